"""What a strategy holds per venue: exchange + market + account + credentials (+ endpoint overrides).

A connector is settings only: the pool builds the connection from them."""

from __future__ import annotations

import os
import re
from typing import Any, Mapping


from framework.errors import ConfigError
from framework.events import ConnectionKey, Market
from framework.sync_log import register_secret
from framework.venue import Credentials, Endpoints, ExchangeSpec

__all__ = ["Credentials", "ExchangeConnector", "credentials_from_env", "env_var"]

_ENV_SUFFIX = {
    "api_key": "API_KEY",
    "secret": "API_SECRET",
    "passphrase": "PASSPHRASE",
    "wallet_address": "WALLET_ADDRESS",
}


def env_var(exchange: str, account: str, field: str) -> str:
    prefix = exchange.upper()
    if account != "default":
        prefix += "_" + re.sub(r"[^A-Z0-9]", "_", account.upper())
    return f"{prefix}_{_ENV_SUFFIX[field]}"


def credentials_from_env(
    exchange: str, account: str, required: tuple[str, ...], environ: Mapping[str, str] | None = None
) -> Credentials:
    """Read the venue's credentials from the environment; a ConfigError names the first missing variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for field in required:
        name = env_var(exchange, account, field)
        value = environ.get(name, "").strip()
        if not value:
            raise ConfigError(
                f"{name} is not set: export it, or pass credentials=Credentials({field}=...) "
                f"to the {exchange} connector"
            )
        values[field] = value
    return Credentials(**values)


def _coerce_credentials(value: Any) -> Credentials | None:
    if value is None or isinstance(value, Credentials):
        return value
    if isinstance(value, Mapping):
        try:
            return Credentials(**value)
        except TypeError as exc:
            raise ConfigError(f"bad credentials mapping: {exc}; allowed keys: {', '.join(_ENV_SUFFIX)}") from None
    raise ConfigError(f"credentials must be a Credentials or a mapping, got {type(value).__name__}")


class ExchangeConnector:
    """A real venue connection's settings. Reading the environment is all it does on creation."""

    is_mock = False

    def __init__(
        self,
        exchange: str,
        market_type: str | Market,
        account: str = "default",
        credentials: Credentials | Mapping[str, str] | None = None,
        endpoints: Endpoints | None = None,
        retry_policy: Any = None,
        backfill: bool = True,
        stall_limit: float = 300.0,
        *,
        backfill_overlap_ms: int = 60_000,
        backfill_retry_policy: Any = None,
    ) -> None:
        from exchanges import get_exchange

        self.key = ConnectionKey(exchange=exchange, market=market_type, account=account)
        self.spec: ExchangeSpec = get_exchange(self.key.exchange)
        if self.key.market not in self.spec.markets:
            raise ConfigError(
                f"{self.key.exchange} has no {self.key.market.value} market here: "
                f"use one of {', '.join(sorted(m.value for m in self.spec.markets))}"
            )
        creds = _coerce_credentials(credentials)
        if creds is None:
            creds = credentials_from_env(self.key.exchange, self.key.account, self.spec.credentials_required)
        else:
            missing = [f for f in self.spec.credentials_required if not getattr(creds, f)]
            if missing:
                raise ConfigError(f"{self.key.exchange} credentials lack {', '.join(missing)}")
        for secret in creds.secrets():
            register_secret(secret)
        self.credentials = creds
        self.endpoints = endpoints
        self.retry_policy = retry_policy
        self.backfill = backfill
        self.stall_limit = stall_limit
        if backfill_overlap_ms < 0:
            raise ConfigError(f"backfill_overlap_ms must be >= 0, got {backfill_overlap_ms}")
        self.backfill_overlap_ms = backfill_overlap_ms  # each backfill re-reads this far before its start
        self.backfill_retry_policy = backfill_retry_policy  # None: framework.retry.REST_CALL

    @property
    def exchange(self) -> str:
        return self.key.exchange

    @property
    def market(self) -> Market:
        return self.key.market

    @property
    def account(self) -> str:
        return self.key.account

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key})"
