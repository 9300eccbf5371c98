"""What the market data tests share: waiting for a condition, and a backoff that retries fast."""

import asyncio

from framework.retry import Backoff

FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.0)


async def until(predicate, what, timeout=8.0):
    """Poll `predicate` every 20 ms; an AssertionError naming `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
