"""``python -m streamlog``: the command line (see docs/cli.md)."""

from __future__ import annotations

from streamlog._cli import main

raise SystemExit(main())
