#!/usr/bin/env python3
"""Run a strategy: `python scripts/run_strategy.py --help`. No arguments: the example on the paper feed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
