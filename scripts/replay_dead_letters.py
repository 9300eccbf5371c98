#!/usr/bin/env python3
"""Re-normalize kept frames after a fix and store them: `python scripts/replay_dead_letters.py --db …`;
`--consumer NAME [--list]`: have the running pipeline hand NAME the events it missed (or list them)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from framework.dead_letters import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
