"""The strategy process's side of scale-out: its keys come from NATS JetStream instead of a socket of its own.

`ScaleOut` holds the process's NATS client and its interest in each key (a KV entry it rewrites as a heartbeat);
`NatsConnector` stands in a strategy's `exchange_connectors` for a venue connector, and the pool opens a
`NatsConnection` for it: a durable pull consumer whose events go into the pipeline as a socket's would. A
message is acknowledged once this process's store holds its event, so a restart resumes from the first one
not held: nothing missed, and what comes twice is a duplicate the store drops.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from loguru import logger

from framework.connection import BaseConnection, ConnectionStatus
from framework.errors import ConfigError
from framework.events import ConnectionKey, now_ms
from framework.scaleout.jetstream import (
    LEASE_SECONDS,
    Namespace,
    bucket,
    check_name,
    connect,
    ensure_stream,
    event_of,
    identity,
    token,
)

INTEREST_TTL = 10.0  # seconds an interest entry lives without a heartbeat (a process killed: its keys let go)
FETCH_BATCH = 500
ACK_WAIT = 30.0


class ScaleOut:
    """One strategy process on NATS: its name (its durable consumers resume under it), its interest per key."""

    def __init__(self, url: str, process: str, namespace: Namespace | str | None = None) -> None:
        self.url = url
        self.process = check_name(process, "process name (--nats-name)")
        self.ns = namespace if isinstance(namespace, Namespace) else Namespace(namespace or "tradesync")
        self.client: Any = None
        self.js: Any = None
        self.interest: Any = None
        self.owners: Any = None
        self._keys: dict[ConnectionKey, dict[str, Any]] = {}  # key -> what this process declares on it
        self._pool: Any = None
        self._foreign: dict[str, str] = {}  # other processes' strategies ("process/id") -> prefix
        self._tasks: set[asyncio.Task] = set()
        self._touched = asyncio.Event()
        self._log = logger.bind(process=self.process, nats=url)

    async def start(self) -> None:
        if self.client is not None:
            return
        self.client = await connect(self.url, f"tradesync-{self.process}")
        self.js = self.client.jetstream()
        await ensure_stream(self.js, self.ns)
        self.interest = await bucket(self.js, self.ns.interest_bucket, INTEREST_TTL)
        self.owners = await bucket(self.js, self.ns.owners_bucket, LEASE_SECONDS)
        self._spawn(self._heartbeat(), "nats-interest-heartbeat")
        self._spawn(self._watch_prefixes(), "nats-foreign-prefixes")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for key in list(self._keys):
            await self.withdraw(key)
        if self.client is not None:
            try:
                await self.client.drain()
            except Exception as exc:  # noqa: BLE001 - closing
                self._log.bind(error=str(exc)).debug("nats drain failed")
            self.client = None

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def connector(self, venue_connector: Any) -> NatsConnector:
        return NatsConnector(venue_connector, self)

    def bind_pool(self, pool: Any) -> None:
        self._pool = pool
        for owner, prefix in self._foreign.items():
            pool.declare_strategy(owner, prefix)

    # interest -------------------------------------------------------------------------------------------------
    def _record(self, key: ConnectionKey) -> bytes:
        strategies: dict[str, str] = {}
        symbols: set[str] = set()
        if self._pool is not None:
            router = self._pool.pipeline.router
            for sid, subscription in router.subscribers.get(key, {}).items():
                strategies[sid] = router.prefixes.get(sid, sid)
                symbols |= set(subscription.symbols or ())
        return json.dumps({"process": self.process, "key": str(key), "strategies": strategies,
                           "symbols": sorted(symbols), "at": now_ms(), **identity()}).encode()

    def _entry(self, key: ConnectionKey) -> str:
        return f"{token(key)}.{self.process}"

    async def declare(self, key: ConnectionKey) -> None:
        self._keys[key] = {}
        await self.interest.put(self._entry(key), self._record(key))

    async def withdraw(self, key: ConnectionKey) -> None:
        if self._keys.pop(key, None) is None or self.interest is None:
            return
        try:
            await asyncio.wait_for(self.interest.delete(self._entry(key)), 2.0)
        except Exception as exc:  # noqa: BLE001 - NATS gone: the entry ages out by itself
            self._log.bind(key=str(key), error=str(exc)).warning("interest not withdrawn: it expires by itself")

    def touch(self) -> None:
        """A strategy joined or left a key here: its interest entries are rewritten now (its prefix is known to the
        other processes before it trades), not at the next heartbeat."""
        self._touched.set()

    async def _heartbeat(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._touched.wait(), INTEREST_TTL / 4)
                await asyncio.sleep(0.02)  # the subscription that touched it is in the router by then
            except TimeoutError:
                pass
            self._touched.clear()
            for key in list(self._keys):
                try:
                    await asyncio.wait_for(self.interest.put(self._entry(key), self._record(key)), 2.0)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - NATS away: the client reconnects, we try again
                    self._log.bind(key=str(key), error=str(exc)[:200]).warning("interest heartbeat not written")
                    continue
                owner = await self.owner(key)
                said = self._keys.get(key)
                if said is None:
                    continue
                if owner is None and said.get("owner", "") is not None:
                    self._log.bind(key=str(key), namespace=self.ns.name).warning(
                        "no streamer owns the key: start tradesync-streamer on this NATS and namespace")
                elif owner is not None and said.get("owner") != owner.get("streamer"):
                    self._log.bind(key=str(key), streamer=owner.get("streamer")).info("key served by streamer")
                said["owner"] = owner.get("streamer") if owner else None

    async def _watch_prefixes(self) -> None:
        """Other processes' strategies and prefixes: a fill one of them owns is kept for it here, never handed to
        this process's strategies by symbol."""
        while True:
            try:
                watcher = await self.interest.watchall()
                async for entry in watcher:
                    if entry is None or entry.value is None or entry.operation is not None:
                        continue
                    try:
                        record = json.loads(entry.value)
                    except ValueError:
                        continue
                    if record.get("process") == self.process:
                        continue
                    for sid, prefix in (record.get("strategies") or {}).items():
                        owner = f"{record['process']}/{sid}"
                        if self._foreign.get(owner) != prefix:
                            self._foreign[owner] = prefix
                            if self._pool is not None:
                                self._pool.declare_strategy(owner, prefix)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS away: watch again
                self._log.bind(error=str(exc)[:200]).debug("interest watch ended: watching again")
                await asyncio.sleep(1.0)

    async def owner(self, key: ConnectionKey) -> dict[str, Any] | None:
        """The streamer owning a key now (None: none)."""
        try:
            entry = await self.owners.get(token(key))
        except Exception:  # noqa: BLE001 - not found, deleted, or NATS away
            return None
        return json.loads(entry.value) if entry.value else None


class NatsConnector:
    """A venue connector whose key's events come over NATS (the streamers hold the socket). Everything else
    (the spec, credentials and endpoints order entry uses) is the venue connector's."""

    def __init__(self, venue: Any, scaleout: ScaleOut) -> None:
        self.venue = venue
        self.scaleout = scaleout
        self.key: ConnectionKey = venue.key
        token(self.key)  # an account name NATS cannot carry fails here

    def __getattr__(self, name: str) -> Any:
        return getattr(self.venue, name)

    def bind_pool(self, pool: Any) -> None:
        self.scaleout.bind_pool(pool)
        if self.key in self.scaleout._keys:
            self.scaleout.touch()

    def remote_connection(self, sink: Any, stored: Any) -> NatsConnection:
        return NatsConnection(self.key, sink, self.scaleout, stored)


class NatsConnection(BaseConnection):
    """A key's events from the namespace's stream through this process's durable consumer."""

    def __init__(self, key: ConnectionKey, sink: Any, scaleout: ScaleOut, stored: Any) -> None:
        super().__init__(key, sink, lambda frame, market: [])
        self.scaleout = scaleout
        self._stored = stored  # awaitable: everything handed to the pipeline so far is in the store
        self.durable = f"{scaleout.process}__{token(key).replace('=', '_at_')}"
        self._sub: Any = None
        self._task: asyncio.Task | None = None
        self.degraded: str | None = None
        self.acked = 0
        self.redelivered = 0

    def _config(self) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        return ConsumerConfig(durable_name=self.durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT,
                              max_ack_pending=20_000, deliver_policy=DeliverPolicy.NEW, max_deliver=-1)

    async def _open(self) -> None:
        so = self.scaleout
        if so.client is None:
            raise ConfigError("the process's NATS scale-out is not started: await scaleout.start() first")
        config = self._config()
        await self._resume_after_ack_floor(config)
        # Created before the interest is declared: whatever the socket this interest opens sends is kept for us.
        self._sub = await so.js.pull_subscribe(so.ns.key_subjects(self.key), durable=self.durable,
                                               stream=so.ns.stream, config=config)
        await so.declare(self.key)
        self._task = asyncio.create_task(self._read(), name=f"nats-read-{self.key}")

    async def _resume_after_ack_floor(self, config: Any) -> bool:
        """A previous run of this process (killed) left messages fetched but not acknowledged: the server would
        send them again only after ACK_WAIT, behind newer ones. The durable consumer is made afresh just after
        its last acknowledged message instead (what comes twice is a duplicate this process's store drops)."""
        from nats.js.api import DeliverPolicy
        from nats.js.errors import NotFoundError

        js, stream = self.scaleout.js, self.scaleout.ns.stream
        try:
            info = await js.consumer_info(stream, self.durable)
        except NotFoundError:
            return False
        if not info.num_ack_pending:
            return False
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        made = info.config
        if floor:
            config.deliver_policy, config.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, floor + 1
        elif made.deliver_policy in (DeliverPolicy.BY_START_SEQUENCE, DeliverPolicy.BY_START_TIME):
            # made afresh before, nothing acknowledged since: where that one started
            config.deliver_policy, config.opt_start_seq, config.opt_start_time = (
                DeliverPolicy(made.deliver_policy), made.opt_start_seq, made.opt_start_time)
        else:  # made with "new", nothing acknowledged yet (the server says floor 0): from when it was made
            config.deliver_policy, config.opt_start_time = DeliverPolicy.BY_START_TIME, info.created
        await js.delete_consumer(stream, self.durable)
        self._log.bind(unacknowledged=info.num_ack_pending, floor=floor).info(
            "resuming after the last acknowledged message (the previous run left some unacknowledged)")
        return True

    async def _back(self) -> None:
        """NATS answers again. What the server sent while the link was dying never arrived, and would come again
        only after ACK_WAIT: the consumer resumes just after its last acknowledged message now (same name, so the
        pull subscription stays)."""
        if self.degraded is None:
            return
        try:
            config = self._config()
            if await self._resume_after_ack_floor(config):
                await self.scaleout.js.add_consumer(self.scaleout.ns.stream, config)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - not yet: degraded still, the next round tries again
            self._log.bind(error=str(exc)[:200]).debug("durable consumer not resumed yet")
            return
        self._healthy()

    async def _close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.scaleout.withdraw(self.key)
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()  # the durable consumer stays: the next start resumes from it
            except Exception as exc:  # noqa: BLE001
                self._log.bind(error=str(exc)).debug("nats unsubscribe failed")

    async def _read(self) -> None:
        failures = 0
        while True:
            try:
                messages = await self._sub.fetch(FETCH_BATCH, timeout=1.0)
            except TimeoutError:  # nothing new (nats-py's own or asyncio's), or NATS away: a fetch times out the same
                if self.scaleout.client is not None and not self.scaleout.client.is_connected:
                    self._degrade("NATS unreachable: the client is reconnecting")
                else:
                    await self._back()
                    failures = 0
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS away: degraded until it answers again
                failures += 1
                self._degrade(f"{type(exc).__name__}: {exc}"[:200])
                await asyncio.sleep(min(0.2 * failures, 2.0))
                continue
            failures = 0
            await self._back()
            events = []
            for message in messages:
                if message.metadata.num_delivered > 1:
                    self.redelivered += 1
                try:
                    events.append(event_of(message.data))
                except Exception as exc:  # noqa: BLE001 - a payload we cannot read: a dead letter, never a stop
                    self.malformed += 1
                    self.sink.dead_letter(message.data.decode(errors="replace")[:4000],
                                          f"nats payload not readable: {exc!r}"[:500])
            self.messages += len(messages)
            self.events += len(events)
            self.last_message = now_ms()
            if events:
                self.sink.publish(events)
                await self._stored()
            for message in messages:
                try:
                    await message.ack()
                    self.acked += 1
                except Exception as exc:  # noqa: BLE001 - unacknowledged: it comes again, a duplicate here
                    self._log.bind(error=str(exc)[:200]).debug("nats ack failed")

    def _degrade(self, reason: str) -> None:
        if self.degraded is None:
            self._log.bind(error=reason).warning("NATS lost: degraded until it is back (resumes where it stood)")
            self.error = reason
            self._set_status(ConnectionStatus.RECONNECTING, error=reason)
        self.degraded = reason

    def _healthy(self) -> None:
        if self.degraded is not None:
            self.degraded = None
            self.error = None
            self.reconnects += 1
            self._log.info("NATS is back: resuming from the durable position")
            self._set_status(ConnectionStatus.CONNECTED)

    def status_dict(self) -> dict[str, Any]:
        info = super().status_dict()
        info.update(via="nats", durable=self.durable, streamer=self.scaleout._keys.get(self.key, {}).get("owner"),
                    degraded=self.degraded is not None, acked=self.acked,
                    redelivered=self.redelivered)
        return info
