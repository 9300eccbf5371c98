#!/usr/bin/env python3
"""Start the live dashboard beside a strategy run: `python scripts/run_dashboard.py --help`. No arguments: the
example Quoter against the simulator, the dashboard on http://127.0.0.1:8000, until Ctrl-C."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework.dashboard.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
