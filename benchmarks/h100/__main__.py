"""``python -m benchmarks.h100``: the device check (see the package's docstring)."""

from __future__ import annotations

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
