"""Named retry policies (tenacity): exponential backoff with jitter, bounded; copy() per use."""

from __future__ import annotations

import aiohttp
from loguru import logger
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from framework.errors import AuthError, ConfigError, ConnectionLost, NormalizeError, RateLimited
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


RECONNECT = reconnect_policy()
REST_CALL = rest_call_policy()
