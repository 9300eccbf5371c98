"""A streamer: holds the private sockets of the keys strategy processes want, one socket per key across every
streamer, and publishes each normalized event to JetStream.

Ownership is a lease in the namespace's owners bucket (a KV bucket whose entries vanish when not rewritten
within the lease): `create` gives a key to exactly one streamer, the owner rewrites it (by revision) every
quarter lease, and a streamer that dies loses it when the lease runs out; a standby then takes the key, opens
the socket (its start-up backfill reads the gap), and first publishes every fill its store holds after the
last one the dead owner had published (the cursor bucket), so nothing stored is left unpublished. Fills go out
with `Nats-Msg-Id` = their dedup key: a replay within the stream's duplicate window is dropped by the server,
a later one by the strategy process's store. The streamer's own store (PostgreSQL, shared by the streamers)
is written as in one process: its unique key is the last word.

While NATS is unreachable the streamer keeps its sockets and its store (nothing is lost: what it could not
publish waits, and the fills are in the store); when NATS is back it renews its leases, or, if another
streamer took a key meanwhile, closes that socket.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from typing import Any, Callable

import attrs
from loguru import logger

from framework.errors import ConfigError
from framework.events import ConnectionKey, now_ms
from framework.pipeline.channels import Channel
from framework.scaleout.jetstream import (
    LEASE_SECONDS,
    Namespace,
    bucket,
    check_name,
    connect,
    ensure_stream,
    identity,
    key_of,
    msg_id,
    payload,
    token,
)
from framework.scaleout.remote import INTEREST_TTL

PUBLISH_BATCH = 256
PUBLISH_TIMEOUT = 5.0  # seconds for a batch's acks: longer, NATS is taken for away and the batch is sent again
CURSOR_EVERY = 0.5  # seconds between writes of the published-fills cursor
RETRY_OPEN = 5.0  # seconds before a key whose socket would not open is tried again
CATCH_UP_PAGE = 500


@attrs.define
class Lease:
    revision: int
    renewed: float  # monotonic time of the last successful create or renew
    since: int  # ms
    subscribed: dict[str, frozenset[str]] = attrs.field(factory=dict)  # pool subscription id -> its symbols


class Streamer:
    """Owns keys by lease and streams them to JetStream. `connector_for(key)` gives the venue connector for a
    key this streamer can serve (None: not this one; a ConfigError: named once in the log, then skipped)."""

    def __init__(
        self,
        url: str,
        pool: Any,
        connector_for: Callable[[ConnectionKey], Any],
        *,
        name: str,
        namespace: Namespace | str | None = None,
    ) -> None:
        self.url = url
        self.pool = pool
        self.connector_for = connector_for
        self.name = check_name(name, "streamer name (--name)")
        self.ns = namespace if isinstance(namespace, Namespace) else Namespace(namespace or "tradesync")
        self.client: Any = None
        self.js: Any = None
        self.lease_seconds = LEASE_SECONDS
        self._owners: Any = None
        self._interest: Any = None
        self._cursors: Any = None
        self._leases: dict[ConnectionKey, Lease] = {}
        self._wanted: dict[str, tuple[dict[str, Any], float]] = {}  # interest entry -> (record, seen monotonic)
        self._unwanted_since: dict[ConnectionKey, float] = {}
        self._not_before: dict[ConnectionKey, float] = {}  # keys that failed to open: not tried again before
        self._refused: set[ConnectionKey] = set()
        self._outbox: collections.deque[tuple[ConnectionKey, str, Any]] = collections.deque()
        self._wakeup = asyncio.Event()
        self._changed = asyncio.Event()
        self._latest: dict[tuple, Any] = {}  # (key, channel, state key) -> the newest balance / position
        self._cursor: dict[ConnectionKey, int] = {}
        self._others: dict[ConnectionKey, float] = {}  # key -> when another streamer's renewal of it was last seen
        self._cursor_written: dict[ConnectionKey, int] = {}
        self._tasks: set[asyncio.Task] = set()
        self._lock = asyncio.Lock()
        self.published = 0
        self.duplicates = 0
        self.publish_errors = 0
        self.nats_down_since: float | None = None
        self.takeovers = 0
        self._log = logger.bind(streamer=self.name)

    # lifecycle ------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        # A takeover backfills the gap through ccxt: imported now, not then (a second with the loop held, every
        # fill of the new socket waiting behind it: failover to fills flowing took 5.0 s instead of 3.5 s).
        import ccxt.async_support  # noqa: F401

        self.client = await connect(self.url, f"tradesync-streamer-{self.name}")
        self.js = self.client.jetstream()
        await ensure_stream(self.js, self.ns)
        self._interest = await bucket(self.js, self.ns.interest_bucket, INTEREST_TTL)
        self._owners = await bucket(self.js, self.ns.owners_bucket, LEASE_SECONDS)
        self._cursors = await bucket(self.js, self.ns.cursor_bucket, None)
        ttl = (await self._owners.status()).ttl
        if ttl:
            self.lease_seconds = float(ttl)
        await self.pool.start()
        self.pool.pipeline.register_component("nats-bridge", self, [Channel.TRADE, Channel.ORDER_UPDATE,
                                                                   Channel.BALANCE, Channel.POSITION])
        self._spawn(self._watch_interest(), "streamer-interest")
        self._spawn(self._watch_owners(), "streamer-owners")
        self._spawn(self._publish_loop(), "streamer-publish")
        self._spawn(self._lead(), "streamer-leases")
        self._log.bind(namespace=self.ns.name, lease=self.lease_seconds).info("streamer started")

    async def stop(self, timeout: float = 10.0) -> None:
        """Close every socket, publish what is left, let the leases go (a standby takes them at once)."""
        lead = [t for t in self._tasks if t.get_name() in ("streamer-leases", "streamer-interest", "streamer-owners")]
        for task in lead:
            task.cancel()
        await asyncio.gather(*lead, return_exceptions=True)
        for key in list(self._leases):
            await self._close_key(key)
        try:
            await self.pool.flush(timeout=timeout / 2)
        except Exception as exc:  # noqa: BLE001
            self._log.bind(error=str(exc)).warning("pool not flushed before stopping")
        deadline = time.monotonic() + timeout / 2
        while self._outbox and time.monotonic() < deadline and self.nats_down_since is None:
            await asyncio.sleep(0.02)
        await self._write_cursors()
        for key in list(self._leases):
            await self._release(key)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pool.stop(timeout=timeout)
        if self.client is not None:
            try:
                await self.client.drain()
            except Exception as exc:  # noqa: BLE001
                self._log.bind(error=str(exc)).debug("nats drain failed")
        self._log.bind(published=self.published).info("streamer stopped")

    async def abandon(self, timeout: float = 1.0) -> None:
        """Die as a killed process does, for tests that simulate a crash in one process: the leases are neither
        renewed nor released (they run out), the cursor is not written, nothing waiting is published, and NATS is
        closed without draining. The pool is left as it is: cut its network first (tests put a proxy in front of
        the venue and the store) for its sockets to die abruptly, and stop it afterwards to free it."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:  # a task's clean-up may outlast `timeout` (a store write on a cut network): not waited for
            await asyncio.wait(list(self._tasks), timeout=timeout)
        self._leases.clear()
        self._outbox.clear()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client.close(), timeout)
        self._log.info("streamer abandoned (crash simulation)")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # interest -------------------------------------------------------------------------------------------------
    async def _watch_interest(self) -> None:
        while True:
            try:
                watcher = await self._interest.watchall()
                async for entry in watcher:
                    if entry is None:
                        continue
                    if entry.operation is not None or not entry.value:  # deleted or purged: interest withdrawn
                        self._wanted.pop(entry.key, None)
                        self._changed.set()
                        continue
                    try:
                        record = json.loads(entry.value)
                        if entry.key not in self._wanted:
                            self._changed.set()  # a new interest: the lease round runs now, not in a quarter lease
                        self._wanted[entry.key] = (record, time.monotonic())
                    except ValueError:
                        self._log.bind(entry=entry.key).warning("interest entry not readable: ignored")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS away: watch again (the watcher replays the bucket)
                self._log.bind(error=str(exc)[:200]).debug("interest watch ended: watching again")
                await asyncio.sleep(0.5)

    def wanted(self) -> dict[ConnectionKey, dict[str, dict[str, Any]]]:
        """Live interest: key -> process -> its record (entries not rewritten within their TTL are gone)."""
        now = time.monotonic()
        found: dict[ConnectionKey, dict[str, dict[str, Any]]] = {}
        for entry, (record, seen) in list(self._wanted.items()):
            if now - seen > INTEREST_TTL:
                del self._wanted[entry]
                continue
            try:
                key = key_of(entry.rsplit(".", 1)[0])
            except Exception:  # noqa: BLE001 - not a key we know
                continue
            found.setdefault(key, {})[record.get("process", entry)] = record
        return found

    # leases ---------------------------------------------------------------------------------------------------
    async def _lead(self) -> None:
        while True:
            try:
                async with self._lock:
                    await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad tick must not end the streamer
                self._log.bind(error=repr(exc)[:300]).exception("lease round failed")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), self._next_round())
            except TimeoutError:
                pass

    def _next_round(self) -> float:
        """Seconds to the next lease round: a renewal due (every quarter lease), or another streamer's lease on a key
        we want running out (a standby tries the moment it can: failover within the lease)."""
        now = time.monotonic()
        wait = self.lease_seconds / 4
        for lease in self._leases.values():
            wait = min(wait, lease.renewed + self.lease_seconds / 4 - now)
        for key in self.wanted():
            seen = self._others.get(key)
            if key not in self._leases and seen is not None:
                wait = min(wait, seen + self.lease_seconds + 0.02 - now)
        return max(wait, 0.05)

    async def _watch_owners(self) -> None:
        """Every other streamer's lease renewal as it is written: when one stops, its lease runs out a lease later."""
        while True:
            try:
                watcher = await self._owners.watchall()
                async for entry in watcher:
                    if entry is None:
                        continue
                    try:
                        key = key_of(entry.key)
                    except Exception:  # noqa: BLE001 - not a key we know
                        continue
                    if entry.operation is not None or not entry.value:  # released: take it now
                        self._others.pop(key, None)
                        self._changed.set()
                    elif json.loads(entry.value).get("streamer") != self.name:
                        self._others[key] = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS away: watch again
                self._log.bind(error=str(exc)[:200]).debug("owners watch ended: watching again")
                await asyncio.sleep(0.5)

    async def _tick(self) -> None:
        wanted = self.wanted()
        now = time.monotonic()
        for key in list(self._leases):
            if now - self._leases[key].renewed >= self.lease_seconds / 4 - 0.05 and not await self._renew(key):
                continue
            processes = wanted.get(key)
            if processes:
                self._unwanted_since.pop(key, None)
                await self._follow(key, processes)
            elif now - self._unwanted_since.setdefault(key, now) >= self.lease_seconds:
                self._log.bind(key=str(key)).info("no interest left: closing the key's socket")
                await self._close_key(key)
                await self._release(key)
        for key, processes in wanted.items():
            if key in self._leases or key in self._refused or now < self._not_before.get(key, 0.0):
                continue
            seen = self._others.get(key)
            if seen is not None and now - seen < self.lease_seconds:
                continue  # another streamer's lease is alive
            await self._acquire(key, processes)

    def _value(self, key: ConnectionKey, lease: Lease | None = None) -> bytes:
        return json.dumps({"streamer": self.name, "key": str(key), "since": lease.since if lease else now_ms(),
                           "renewed": now_ms(), **identity()}).encode()

    async def _acquire(self, key: ConnectionKey, processes: dict[str, dict[str, Any]]) -> None:
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            connector = self.connector_for(key)
        except ConfigError as exc:
            self._refused.add(key)
            self._log.bind(key=str(key), error=str(exc)).error("this streamer cannot serve the key")
            return
        if connector is None:
            self._refused.add(key)
            return
        try:
            revision = await asyncio.wait_for(self._owners.create(token(key), self._value(key)), 2.0)
        except KeyWrongLastSequenceError:  # another streamer owns it (its renewals not seen yet): again shortly
            self._others[key] = time.monotonic() - self.lease_seconds + 0.25
            return
        except Exception as exc:  # noqa: BLE001 - NATS away: next round
            self._log.bind(key=str(key), error=str(exc)[:200]).debug("lease not taken")
            return
        self._leases[key] = Lease(revision=revision, renewed=time.monotonic(), since=now_ms())
        self.takeovers += 1
        self._log.bind(key=str(key)).info("key owned: opening its socket")
        try:
            await self._catch_up(key)
            await self._follow(key, processes, connector)
        except Exception as exc:  # noqa: BLE001 - the socket would not open: let the key go, try later
            self._log.bind(key=str(key), error=repr(exc)[:300]).error("socket not opened: the key is let go")
            await self._close_key(key)
            await self._release(key)
            self._not_before[key] = time.monotonic() + RETRY_OPEN
            return
        self.pool.sync_log.event("key owned by this streamer", key=str(key), streamer=self.name)

    async def _renew(self, key: ConnectionKey) -> bool:
        """Rewrite the lease. Taken by another streamer: the socket is closed at once (False). NATS away: kept."""
        from nats.js.errors import KeyWrongLastSequenceError

        lease = self._leases[key]
        try:
            lease.revision = await asyncio.wait_for(
                self._owners.update(token(key), self._value(key, lease), last=lease.revision), 2.0)
            lease.renewed = time.monotonic()
            return True
        except KeyWrongLastSequenceError:
            pass
        except Exception as exc:  # noqa: BLE001 - NATS unreachable: keep the socket and the store going
            self._log.bind(key=str(key), error=str(exc)[:200]).warning("lease not renewed (NATS away): socket kept")
            return True
        try:  # expired while we were away: nobody took it, take it back; else another streamer owns it now
            lease.revision = await asyncio.wait_for(self._owners.create(token(key), self._value(key, lease)), 2.0)
            lease.renewed = time.monotonic()
            self._log.bind(key=str(key)).warning("lease had expired: taken back")
            return True
        except Exception:  # noqa: BLE001
            pass
        self._log.bind(key=str(key)).warning("lease lost to another streamer: closing the key's socket")
        await self._close_key(key)
        self._leases.pop(key, None)
        return False

    async def _release(self, key: ConnectionKey) -> None:
        lease = self._leases.pop(key, None)
        if lease is None:
            return
        try:
            await asyncio.wait_for(self._owners.delete(token(key), last=lease.revision), 2.0)
        except Exception as exc:  # noqa: BLE001 - it expires by itself
            self._log.bind(key=str(key), error=str(exc)[:200]).debug("lease not deleted: it expires")

    # sockets --------------------------------------------------------------------------------------------------
    async def _follow(self, key: ConnectionKey, processes: dict[str, dict[str, Any]], connector: Any = None) -> None:
        """One pool subscription per interested process: the pool opens the key's socket with the first and
        closes it with the last. A process that joins an open key gets the newest balances and positions."""
        lease = self._leases[key]
        connector = connector or self.connector_for(key)
        want = {f"{process}@{token(key)}": frozenset(record.get("symbols") or ())
                for process, record in processes.items()}
        for sid in [sid for sid in lease.subscribed if sid not in want]:
            await self.pool.unsubscribe_strategy(sid)
            del lease.subscribed[sid]
        joined = False
        for sid, symbols in want.items():
            if sid in lease.subscribed:
                continue
            await self.pool.subscribe_strategy(sid, [connector], sorted(symbols) or None)
            lease.subscribed[sid] = symbols
            joined = True
        if joined:
            for (k, channel, _), event in list(self._latest.items()):
                if k == key:
                    self._outbox.append((key, channel, event))
            self._wakeup.set()

    async def _close_key(self, key: ConnectionKey) -> None:
        lease = self._leases.get(key)
        if lease is None:
            return
        for sid in list(lease.subscribed):
            try:
                await self.pool.unsubscribe_strategy(sid)
            except Exception as exc:  # noqa: BLE001 - closing goes on
                self._log.bind(key=str(key), error=str(exc)).error("subscription not closed")
        lease.subscribed.clear()

    async def _catch_up(self, key: ConnectionKey) -> None:
        """Every fill of the key the store holds after the last one published (by any streamer) goes out first."""
        from nats.js.errors import KeyDeletedError, KeyNotFoundError

        try:
            entry = await self._cursors.get(token(key))
        except (KeyNotFoundError, KeyDeletedError):
            entry = None
        if entry is None or not entry.value:
            # The key's first owner: the mark is what the store holds now (strategy processes start from new
            # events), written before the socket opens, so an owner that dies before it published leaves its
            # stored fills to the next one.
            await self._cursors.put(token(key), str(await self.pool.store.max_seq()).encode())
            return
        after = int(entry.value.decode())
        count = 0
        while True:
            rows = await self.pool.store.trades_after([key], after, CATCH_UP_PAGE)
            for seq, trade in rows:
                self._outbox.append((key, "trade", attrs.evolve(trade, seq=seq)))
                count += 1
            if len(rows) < CATCH_UP_PAGE:
                break
            after = rows[-1][0]
        if count:
            self._log.bind(key=str(key), fills=count).info("published the fills stored after the last owner's")
            self._wakeup.set()

    # the bridge: a pipeline component (fills come once stored, with their seq) -----------------------------------
    async def process_websocket_data(self, channel: str, event: Any) -> None:
        key = event.key
        if channel in ("balance", "position"):
            self._latest[(key, channel, event.state_key)] = event
        self._outbox.append((key, channel, event))
        self._wakeup.set()

    async def _publish_loop(self) -> None:
        failures = 0
        while True:
            if not self._outbox:
                self._wakeup.clear()
                if not self._outbox:
                    await self._wakeup.wait()
                continue
            batch = [self._outbox[i] for i in range(min(PUBLISH_BATCH, len(self._outbox)))]
            try:
                acks = await self._publish_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS away: keep the batch, try again (ids drop repeats)
                failures += 1
                self.publish_errors += 1
                if self.nats_down_since is None:
                    self.nats_down_since = time.monotonic()
                    self._log.bind(error=f"{type(exc).__name__}: {exc}"[:200], waiting=len(self._outbox)).error(
                        "NATS lost: events wait here (fills are in the store), sockets stay open")
                await asyncio.sleep(min(0.1 * failures, 2.0))
                continue
            if self.nats_down_since is not None:
                self._log.bind(down_s=round(time.monotonic() - self.nats_down_since, 1)).warning(
                    "NATS is back: publishing what waited")
                self.nats_down_since = None
            failures = 0
            for _ in batch:
                self._outbox.popleft()
            for (key, channel, event), ack in zip(batch, acks):
                if ack is None:  # a state a newer one of the same batch replaced
                    continue
                self.published += 1
                if ack.duplicate:
                    self.duplicates += 1
                if channel == "trade" and event.seq is not None and event.seq > self._cursor.get(key, -1):
                    self._cursor[key] = event.seq
            self._spawn_cursor_write()

    async def _publish_batch(self, batch: list[tuple[ConnectionKey, str, Any]]) -> list[Any]:
        """Publish a batch in order without waiting for each answer (JetStream's acks come back pipelined: a
        third of the CPU of one request per message), then wait for every ack; a balance or position that a newer
        state of the same entity in the batch replaces is not sent (None)."""
        newest: dict[tuple, int] = {}
        for i, (key, channel, event) in enumerate(batch):
            if channel in ("balance", "position"):
                newest[(key, channel, event.state_key)] = i
        futures: list[Any] = []
        for i, (key, channel, event) in enumerate(batch):
            if channel in ("balance", "position") and newest[(key, channel, event.state_key)] != i:
                futures.append(None)
                continue
            ident = msg_id(event)
            futures.append(await self.js.publish_async(self.ns.subject(key, channel), payload(event),
                                                       headers={"Nats-Msg-Id": ident} if ident else None))
        sent = [f for f in futures if f is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*sent), PUBLISH_TIMEOUT)
        except BaseException:
            for future in sent:
                future.cancel()
            raise
        return [f.result() if f is not None else None for f in futures]

    def _spawn_cursor_write(self) -> None:
        if any(t.get_name() == "streamer-cursor" for t in self._tasks):
            return
        self._spawn(self._cursor_later(), "streamer-cursor")

    async def _cursor_later(self) -> None:
        await asyncio.sleep(CURSOR_EVERY)
        await self._write_cursors()

    async def _write_cursors(self) -> None:
        for key, seq in list(self._cursor.items()):
            if self._cursor_written.get(key) == seq or self._cursors is None:
                continue
            try:
                await asyncio.wait_for(self._cursors.put(token(key), str(seq).encode()), 2.0)
                self._cursor_written[key] = seq
            except Exception as exc:  # noqa: BLE001 - written with the next batch
                self._log.bind(key=str(key), error=str(exc)[:200]).debug("published cursor not written")

    # status ---------------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "streamer": self.name,
            "namespace": self.ns.name,
            "lease_seconds": self.lease_seconds,
            "owned": {str(key): {"since": lease.since, "renewed_s_ago": round(now - lease.renewed, 2),
                                 "subscribers": sorted(lease.subscribed)} for key, lease in self._leases.items()},
            "published": self.published,
            "duplicates_dropped_by_nats": self.duplicates,
            "waiting": len(self._outbox),
            "nats": "down" if self.nats_down_since is not None or (self.client is not None
                                                                   and not self.client.is_connected) else "up",
            "takeovers": self.takeovers,
        }
