"""Run the reliability soak tier (``pytest --soak -m soak tests/reliability``); print the figures.

Usage::

    .venv/bin/python benchmarks/soak.py            # the full soak: about 10 minutes on 2 cores
    .venv/bin/python benchmarks/soak.py --quick    # every soak test, small counts (~2.5 minutes)
    .venv/bin/python benchmarks/soak.py --seed 42  # reproducible random choices

The figures (kills survived, crash points x n, power cuts, faults injected,
fuzz cases, anomalies) are printed as a table at the end and written to
``benchmarks/results/soak-<date>.txt`` with the command line. Sizes can be
changed with the environment variables the tests read:
``STREAMLOG_SOAK_KILLS`` (per ack level, default 250),
``STREAMLOG_SOAK_POWER_CUTS`` (5000), ``STREAMLOG_SOAK_EXAMPLES`` (3000),
``STREAMLOG_SOAK_FUZZ`` (in-process file fuzz cases, 94000),
``STREAMLOG_SOAK_DIR_FUZZ`` (whole-directory fuzz cases in a child, 6000),
``STREAMLOG_SOAK_ROUNDS`` (rounds of the power cuts in compaction, 10).
The I/O error loop and the crash points always run every k and every n.
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks._common import machine, source_state  # noqa: E402

QUICK = {
    "STREAMLOG_SOAK_KILLS": "10",
    "STREAMLOG_SOAK_POWER_CUTS": "200",
    "STREAMLOG_SOAK_EXAMPLES": "100",
    "STREAMLOG_SOAK_FUZZ": "3000",
    "STREAMLOG_SOAK_DIR_FUZZ": "300",
    "STREAMLOG_SOAK_ROUNDS": "1",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts, to try it out")
    ap.add_argument("--seed", type=int, default=0, help="STREAMLOG_TEST_SEED (0: random)")
    ap.add_argument("-k", default=None, help="pytest -k expression (run some soak tests only)")
    ap.add_argument("--out", default=None, help="result file (default benchmarks/results/...)")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.quick:
        for key, value in QUICK.items():
            env.setdefault(key, value)
    if args.seed:
        env["STREAMLOG_TEST_SEED"] = str(args.seed)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--soak",
        "-m",
        "soak",
        "-p",
        "no:cacheprovider",
        "-q",
        "-s",
        "--timeout",
        "0",
        "tests/reliability",
    ]
    if args.k:
        cmd += ["-k", args.k]
    t0 = time.monotonic()
    started = datetime.datetime.now().isoformat(timespec="seconds")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    out = proc.stdout
    sys.stdout.write(out)
    sys.stderr.write(proc.stderr)
    table = (
        out.split("streamlog reliability figures", 1)[-1] if "reliability figures" in out else ""
    )
    lines = [
        line
        for line in table.splitlines()
        if "=" in line and not line.strip().startswith("=") and " passed" not in line
    ]
    header = [
        f"streamlog reliability soak, {started}",
        f"machine: {machine()}",
        f"source: {source_state(ROOT)}",
        "command: "
        + " ".join(
            [f"{k}={os.environ[k]}" for k in sorted(os.environ) if k.startswith("STREAMLOG_")]
            + [".venv/bin/python benchmarks/soak.py"]
            + (["--quick"] if args.quick else [])
            + ([f"--seed {args.seed}"] if args.seed else [])
        ),
        f"total time {elapsed:.0f}s; pytest exit code {proc.returncode}",
        "",
    ]
    report = "\n".join(header + lines) + "\n"
    print("\n" + report)
    if not args.quick or args.out:
        path = args.out or os.path.join(
            ROOT, "benchmarks", "results", f"soak-{datetime.date.today().isoformat()}.txt"
        )
        with open(path, "w") as f:
            f.write(report)
        print(f"written to {os.path.relpath(path, ROOT)}")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
