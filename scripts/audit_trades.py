#!/usr/bin/env python3
"""Compare the store with the venue's REST history: `python scripts/audit_trades.py --help`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework.audit import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
