#!/usr/bin/env python3
"""Summarize the latest trade sync log: `python scripts/trade_sync_report.py [--log-dir logs]`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework.report import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
