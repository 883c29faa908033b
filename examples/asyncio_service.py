"""An asyncio service with streamlog.aio: bank accounts as an event store, a live
projection served over HTTP, and notifications to a consumer group.

    python examples/asyncio_service.py [DATA_DIR]

Plain asyncio, no web framework: the service speaks just enough HTTP/1.0 for the demo
client at the end of this file. Its handlers are ordinary coroutines, so they plug into
FastAPI (or aiohttp) as they are::

    from contextlib import asynccontextmanager
    from fastapi import FastAPI, HTTPException

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with BankService(DATA_DIR) as service:     # one per process (one loop)
            app.state.bank = service
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/accounts/{account}/deposit")
    async def deposit(account: str, amount: int):
        return await app.state.bank.deposit(account, amount)

    @app.post("/accounts/{account}/withdraw")
    async def withdraw(account: str, amount: int):
        try:
            return await app.state.bank.withdraw(account, amount)
        except InsufficientFundsError as e:
            raise HTTPException(409, str(e))

    @app.get("/accounts/{account}")
    async def balance(account: str, after: int = -1):   # read your writes: ?after=<position>
        return await app.state.bank.balance(account, after)

What it shows:

- the write side: ``AIOEventStore.append`` with ``expected_revision`` (optimistic
  concurrency): concurrent withdrawals that would overdraw an account are refused, the
  losers of a race re-read the account and retry;
- the read side: a projection fed by an ``AIOSubscription`` (history, ``CAUGHT_UP``,
  then live events), kept in memory and served; a reader may wait until the projection
  has applied its own write (``?after=<position>``);
- integration: every accepted command publishes a notification with an ``AIOProducer``;
  a "mailer" task reads them with an ``AIOConsumer`` in a consumer group.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import tempfile
import urllib.parse
from typing import Any

import streamlog
import streamlog.aio


class InsufficientFundsError(Exception):
    pass


class Projection:
    """Balances per account, from every event of the store, in memory."""

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.revisions: dict[str, int] = {}
        self.position = -1  # offset of the last event applied
        self.applied = 0
        self.caught_up = asyncio.Event()
        self._moved = asyncio.Condition()

    async def run(self, store: streamlog.aio.AIOEventStore) -> None:
        async with store.subscribe() as sub:
            async for item in sub:
                if item is streamlog.CAUGHT_UP:
                    self.caught_up.set()
                    continue
                event: Any = item
                body = json.loads(event.data)
                sign = 1 if body["type"] == "Deposited" else -1
                self.balances[event.stream] = (
                    self.balances.get(event.stream, 0) + sign * body["amount"]
                )
                self.revisions[event.stream] = event.revision
                self.position = event.offset
                self.applied += 1
                async with self._moved:
                    self._moved.notify_all()

    async def wait_for(self, position: int) -> None:
        async with self._moved:
            await self._moved.wait_for(lambda: self.position >= position)


class BankService:
    """The application: commands append events; queries read the projection."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.conflicts = 0

    async def __aenter__(self) -> BankService:
        # opening may run crash recovery: off the loop
        self.log = await asyncio.to_thread(streamlog.open, self.path)
        if "notifications" not in self.log.topics():
            self.log.create_topic("notifications", partitions=2)
        self.store = streamlog.aio.AIOEventStore(self.log, "accounts")
        self.producer = streamlog.aio.AIOProducer(self.log, acks=1)
        self.projection = Projection()
        self._projector = asyncio.create_task(self.projection.run(self.store))
        await self.projection.caught_up.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._projector.cancel()
        await asyncio.gather(self._projector, return_exceptions=True)
        await self.producer.close()
        await self.store.close()
        await asyncio.to_thread(self.log.close)

    async def _decide(self, account: str, amount: int, kind: str) -> dict[str, Any]:
        """Read the account, check the rule, append with the revision read; retry if
        another request got there first."""
        while True:
            history = await self.store.read(account)
            balance = sum(
                (1 if json.loads(e.data)["type"] == "Deposited" else -1)
                * json.loads(e.data)["amount"]
                for e in history
            )
            if kind == "Withdrawn" and balance < amount:
                raise InsufficientFundsError(f"{account} holds {balance}, cannot withdraw {amount}")
            await asyncio.sleep(0)  # (a real service would await something here too)
            expected = history[-1].revision if history else streamlog.NO_STREAM
            event = json.dumps({"type": kind, "amount": amount}).encode()
            try:
                revision = await self.store.append(account, event, expected_revision=expected)
                break
            except streamlog.WrongExpectedVersionError:
                self.conflicts += 1  # another request changed the account: decide again,
                await asyncio.sleep(random.random() * 0.002)  # after a jittered pause
        (written,) = await self.store.read(account, revision, revision)
        await self.producer.send(
            "notifications",
            json.dumps({"account": account, kind: amount}).encode(),
            key=account.encode(),
        )
        return {"account": account, "revision": revision, "position": written.offset}

    async def deposit(self, account: str, amount: int) -> dict[str, Any]:
        return await self._decide(account, amount, "Deposited")

    async def withdraw(self, account: str, amount: int) -> dict[str, Any]:
        return await self._decide(account, amount, "Withdrawn")

    async def balance(self, account: str, after: int = -1) -> dict[str, Any]:
        await asyncio.wait_for(self.projection.wait_for(after), 10)  # read your writes
        p = self.projection
        return {
            "account": account,
            "balance": p.balances.get(account, 0),
            "revision": p.revisions.get(account),
        }

    # ------------------------------------------------------------------ plain HTTP
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = (await reader.readline()).decode()
            while (await reader.readline()).strip():
                pass  # headers
            method, target, _version = request.split()
            url = urllib.parse.urlsplit(target)
            query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
            parts = url.path.strip("/").split("/")
            status, body = 404, {"error": "not found"}
            if method == "POST" and len(parts) == 3 and parts[2] in ("deposit", "withdraw"):
                try:
                    status, body = (
                        200,
                        await getattr(self, parts[2])(parts[1], int(query["amount"])),
                    )
                except InsufficientFundsError as e:
                    status, body = 409, {"error": str(e)}
            elif method == "GET" and len(parts) == 2:
                status, body = 200, await self.balance(parts[1], int(query.get("after", -1)))
            data = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.0 {status} X\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data
            )
            await writer.drain()
        finally:
            writer.close()


async def mailer(log: streamlog.Log, expected: int, got: list[dict[str, Any]]) -> None:
    """A worker of consumer group "mailer": one notification per accepted command."""
    async with streamlog.aio.AIOConsumer(
        log, "notifications", group_id="mailer", auto_offset_reset="earliest"
    ) as consumer:
        async for record in consumer:
            got.append(json.loads(record.value or b"{}"))
            if len(got) == expected:
                await consumer.commit()
                return


async def request(port: int, method: str, target: str) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {target} HTTP/1.0\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def main(path: str) -> None:
    async with BankService(path) as service:
        server = await asyncio.start_server(service.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(f"service listening on 127.0.0.1 (port {port})", flush=True)

        # 20 concurrent deposits of 10, then 20 concurrent withdrawals of 15 (300 > 200)
        deposits = await asyncio.gather(
            *(request(port, "POST", "/accounts/acc-1/deposit?amount=10") for _ in range(20))
        )
        print(f"20 concurrent deposits of 10: {sum(s == 200 for s, _ in deposits)} x 200")
        withdrawals = await asyncio.gather(
            *(request(port, "POST", "/accounts/acc-1/withdraw?amount=15") for _ in range(20))
        )
        ok = [b for s, b in withdrawals if s == 200]
        refused = sum(s == 409 for s, _ in withdrawals)
        print(f"20 concurrent withdrawals of 15: {len(ok)} x 200, {refused} x 409 (insufficient)")
        print(f"optimistic concurrency: {service.conflicts} conflicting appends retried")
        last = max(b["position"] for b in ok)
        status, body = await request(port, "GET", f"/accounts/acc-1?after={last}")
        print(f"GET /accounts/acc-1?after={last} -> {status} {json.dumps(body)}")
        notifications: list[dict[str, Any]] = []
        accepted = sum(s == 200 for s, _ in deposits) + len(ok)
        await asyncio.wait_for(mailer(service.log, accepted, notifications), 30)
        kinds = sorted({k for n in notifications for k in n if k != "account"})
        print(f"mailer: {len(notifications)} notifications ({', '.join(kinds)})")
        print(
            f"projection: {service.projection.applied} events applied, "
            f"position {service.projection.position}"
        )
        server.close()
        await server.wait_closed()
    print("service stopped cleanly")


if __name__ == "__main__":
    data = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="streamlog-aio-")
    asyncio.run(main(data))
