"""``python -m mailtransfer``: the command line (see `mailtransfer.cli` and docs/cli.md)."""

from __future__ import annotations

import sys

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
