"""Console logging for programs and tests: one stderr sink that leaves trade-sync records to their file."""

from __future__ import annotations

import sys

from loguru import logger

_FORMAT = "<green>{time:HH:mm:ss.SSS}</green> | <level>{level: <7}</level> | {message} | {extra}"


def configure_console(level: str = "WARNING") -> None:
    """Replace loguru's default sink with a stderr sink at `level` (trade sync lines stay in their file), and
    turn on the framework's own records (a library's, off until the application enables them)."""
    logger.enable("framework")
    logger.enable("exchanges")
    logger.remove()
    logger.add(
        sys.stderr,
        level=level,
        format=_FORMAT,
        filter=lambda record: "trade_sync_path" not in record["extra"],
        backtrace=False,
        diagnose=False,
    )
