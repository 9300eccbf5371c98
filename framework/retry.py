"""Named retry policies (tenacity): exponential backoff with jitter, bounded; copy() per use."""

from __future__ import annotations

import random

import aiohttp
import attrs
from loguru import logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_never,
    wait_exponential,
    wait_random,
)

from framework.errors import AuthError, ConfigError, ConnectionLost, NormalizeError, RateLimited, StoreError
from framework.sync_log import redact


def _retryable(exc: BaseException) -> bool:
    """Network trouble is retried; refused credentials, bad config and bad frames never are."""
    if isinstance(exc, (AuthError, ConfigError, NormalizeError)):
        return False
    return isinstance(exc, (ConnectionLost, RateLimited, OSError, TimeoutError, aiohttp.ClientError)) or (
        type(exc).__module__.startswith("websockets")
    )


def log_before_sleep(policy: str):
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        logger.bind(
            policy=policy,
            attempt=state.attempt_number,
            error=redact(repr(exc)),  # no signed URL or listenKey in the log
            delay=round(state.next_action.sleep, 3) if state.next_action else None,
        ).warning("retrying after failure")

    return before_sleep


def reconnect_policy(
    initial: float = 0.5, maximum: float = 30.0, jitter: float = 1.0, give_up_after: float = 3600.0
) -> AsyncRetrying:
    """Reconnect a dropped stream: 0.5 s doubling to 30 s, ± jitter, giving up after an hour of failures."""
    return AsyncRetrying(
        wait=wait_exponential(multiplier=initial, max=maximum) + wait_random(0, jitter),
        stop=stop_after_delay(give_up_after),
        retry=retry_if_exception(_retryable),
        before_sleep=log_before_sleep("RECONNECT"),
        reraise=True,
    )


def rest_call_policy(
    initial: float = 0.2, maximum: float = 5.0, jitter: float = 0.5, attempts: int = 5, give_up_after: float = 60.0
) -> AsyncRetrying:
    """One REST call: up to 5 attempts within a minute, backing off from 0.2 s to 5 s."""
    return AsyncRetrying(
        wait=wait_exponential(multiplier=initial, max=maximum) + wait_random(0, jitter),
        stop=stop_after_attempt(attempts) | stop_after_delay(give_up_after),
        retry=retry_if_exception(_retryable),
        before_sleep=log_before_sleep("REST_CALL"),
        reraise=True,
    )


def _backfill_retryable(exc: BaseException) -> bool:  # a cancellation ends the run (tenacity would retry it)
    return isinstance(exc, Exception) and not isinstance(exc, (AuthError, ConfigError))


def backfill_policy(initial: float = 1.0, maximum: float = 5.0, jitter: float = 0.5) -> AsyncRetrying:
    """A whole backfill run that failed (its REST calls gave up): again from 1 s doubling to 5 s, for as long
    as the connection lives; refused keys and bad config are final."""
    return AsyncRetrying(
        wait=wait_exponential(multiplier=initial, max=maximum) + wait_random(0, jitter),
        stop=stop_never,
        retry=retry_if_exception(_backfill_retryable),
        before_sleep=log_before_sleep("BACKFILL"),
        reraise=True,
    )


def _store_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, StoreError) and exc.transient


def store_write_policy(initial: float = 0.05, maximum: float = 5.0, jitter: float = 0.05) -> AsyncRetrying:
    """The store writer while the store is unreachable: 50 ms doubling to 5 s, never giving up (what waits is
    in the spool meanwhile). A value the store refuses is not retried: it becomes a dead letter."""
    return AsyncRetrying(
        wait=wait_exponential(multiplier=initial, max=maximum) + wait_random(0, jitter),
        stop=stop_never,
        retry=retry_if_exception(_store_unreachable),
        reraise=True,
    )


def store_open_policy(initial: float = 0.5, maximum: float = 5.0, jitter: float = 0.1) -> AsyncRetrying:
    """Opening a store that was unreachable at start: 0.5 s doubling to 5 s, never giving up."""
    return AsyncRetrying(
        wait=wait_exponential(multiplier=initial, max=maximum) + wait_random(0, jitter),
        stop=stop_never,
        retry=retry_if_exception(_store_unreachable),
        reraise=True,
    )


RECONNECT = reconnect_policy()
REST_CALL = rest_call_policy()
BACKFILL = backfill_policy()
STORE_WRITE = store_write_policy()
STORE_OPEN = store_open_policy()


@attrs.frozen
class Backoff:
    """Delays for a loop that never gives up but must not spin: `initial` doubling to `maximum`, + jitter.

    `delay(n)` is the wait before the n-th retry in a row (n >= 1); the caller resets n after a success."""

    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 1.0
    free: int = 1  # the first `free` retries in a row go at once (a book resync: ccxt.pro does it by itself)

    def delay(self, n: int) -> float:
        if n <= self.free:
            return 0.0
        return min(self.maximum, self.initial * 2 ** (n - self.free - 1)) + random.uniform(0, self.jitter)


# A market data watch loop (framework/marketdata): the same waits as RECONNECT, never giving up; a stream that
# keeps failing is reported degraded, not dropped.
MARKET_WATCH = Backoff()
