"""A near cache: a thread-safe FlexCache in front of a shared Redis, kept coherent by the server.

``NearCache(client)`` reads through to Redis and keeps a local copy of what it read; Redis's
server-assisted client-side caching (``CLIENT TRACKING``) tells it when a key it read changes,
and the copy is dropped. How the pieces fit:

* One **data connection** carries every read and write of the near cache. Tracking is per
  connection: the server only reports changes to keys *this* connection read, so reads must
  never go through another pooled connection (a redis-py ``pipeline()`` or ``client.get``
  would take one). It is guarded by a lock; it has ``CLIENT TRACKING ON REDIRECT <id> NOLOOP``.
* One **invalidation connection**, subscribed to ``__redis__:invalidate``: ``<id>`` above. A
  daemon thread reads it.
* Both connections speak RESP2, whatever protocol the client was made with (the replies of
  GET, PTTL, SET and DEL read the same in both). A RESP2 redirect target gets invalidations
  as pub/sub messages on every Redis from 6.0 (a RESP3 one gets ``invalidate`` pushes, which
  redis-py hands to its own push handlers), and the pair must match: Redis 7.0 writes the
  null of a flush invalidation in the *tracking* client's protocol, so a RESP3 data
  connection sends ``_\r\n`` to a RESP2 redirect target, which redis-py rejects as an
  invalid response (tests/test_near_cache.py shows it).
* Every read in flight registers its key; an invalidation of that key marks it, and the read
  keeps no copy. The check and the store happen under the lock the invalidation takes to drop
  the key, so an invalidation is applied either before the check or after the store.
* Anything that could lose an invalidation (the invalidation connection dropped, the data
  connection reconnected, a server restart) bumps an epoch and clears every local copy; reads
  that started before it keep nothing, and reads go to the server uncached until the data
  connection tracks again, redirected to a live invalidation connection on the same server
  (same ``run_id``: client ids restart after a server restart, so an old id could name some
  other client).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NamedTuple

import redis
from redis.exceptions import ResponseError

from flexcache import FlexCache

__all__ = ["NearCache", "NearCacheStats"]

_CHANNEL = b"__redis__:invalidate"

# In the local cache for a key the server said does not exist (a tracked miss: the server
# reports the key's creation like any other change).
_ABSENT = object()
_MISSING = object()


class NearCacheStats(NamedTuple):
    """A snapshot of a near cache's counts since it was made."""

    local_hits: int
    """Lookups answered by a local copy (a remembered miss included)."""
    server_reads: int
    """Lookups that went to the server."""
    copies_kept: int
    """Server replies kept as a local copy (by reads and by ``set``)."""
    copies_discarded: int
    """Server replies not kept: raced by an invalidation, untracked, or already expired."""
    writes: int
    """``set`` and ``delete`` calls sent to the server."""
    invalidations: int
    """Keys the server said changed."""
    flushes: int
    """``FLUSHALL``/``FLUSHDB`` invalidations (every local copy dropped)."""
    tracking_losses: int
    """Times tracking was lost (connection dropped, server restarted): every copy dropped."""

    @property
    def hit_ratio(self) -> float:
        """``local_hits / (local_hits + server_reads)``, or ``0.0`` before any lookup."""
        lookups = self.local_hits + self.server_reads
        return self.local_hits / lookups if lookups else 0.0


def _ttl_ms(ttl: float | timedelta | None) -> int | None:
    if ttl is None:
        return None
    if isinstance(ttl, timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        seconds = float(ttl)
    else:
        raise TypeError(f"ttl must be seconds or a timedelta, not {type(ttl).__name__}")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"ttl must be > 0 and finite, got {ttl!r}")
    # Rounded up to a whole millisecond: the server's expiry may be later than asked, never
    # earlier than the local copy's (which is bounded by the PTTL read back).
    return max(1, math.ceil(seconds * 1000))


def _run_id(info: Any) -> str:
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith("run_id:"):
            return line[len("run_id:") :].strip()
    raise redis.RedisError("INFO server has no run_id")


class NearCache:
    """A thread-safe FlexCache in front of the Redis server ``client`` talks to.

    ``get`` serves a local copy while the server has not reported a change to the key, and
    otherwise reads the server (``GET`` and ``PTTL``) and keeps a copy that expires no later
    than the key does on the server. ``set`` and ``delete`` write through. Values are what
    the client's ``GET`` returns (``bytes``, or ``str`` with ``decode_responses``).

    ``cache`` is the local FlexCache (it must be ``thread_safe``), or else one is made from
    ``cache_args`` (FlexCache's constructor arguments; ``thread_safe`` is on). Its keys are
    the encoded key ``bytes``. ``health_check_interval`` is how long the invalidation
    connection may be idle before it is PINGed; no PONG within ``health_check_timeout``
    counts as a lost connection.
    """

    def __init__(
        self,
        client: redis.Redis,
        cache: FlexCache[bytes, Any] | None = None,
        *,
        health_check_interval: float = 1.0,
        health_check_timeout: float = 2.0,
        **cache_args: Any,
    ) -> None:
        if cache is not None and cache_args:
            raise TypeError("pass a cache or FlexCache arguments, not both")
        if cache is None:
            if cache_args.get("thread_safe", True) is False:
                raise ValueError("a NearCache's local cache is thread-safe: thread_safe=False")
            cache_args["thread_safe"] = True
            cache = FlexCache(**cache_args)
        elif not cache.thread_safe:
            raise ValueError("the local cache must be a thread_safe FlexCache")
        if not (health_check_interval > 0 and health_check_timeout > 0):
            raise ValueError("health_check_interval and health_check_timeout must be > 0")
        pool = getattr(client, "connection_pool", None)
        if pool is None or not hasattr(pool, "connection_kwargs"):
            raise TypeError("client must be a redis.Redis (a cluster client is not supported)")
        self.client = client
        self.local = cache
        self._health_interval = float(health_check_interval)
        self._health_timeout = float(health_check_timeout)

        kwargs = dict(pool.connection_kwargs)
        # Our two connections are ours alone: not the pool's maintenance-notification
        # bookkeeping (it would track them as pooled connections).
        for name in ("maint_notifications_pool_handler", "maint_notifications_config"):
            kwargs.pop(name, None)
        kwargs["protocol"] = 2  # see the module's docstring
        self._conn_class = pool.connection_class
        self._conn_kwargs = kwargs
        self._data = self._conn_class(**kwargs)
        encoder = self._data.encoder
        self._encode = encoder.encode
        self._encoding, self._encoding_errors = encoder.encoding, encoder.encoding_errors
        # Called by redis-py on every (re)connect of the data connection, including the
        # implicit ones inside send_command: a new socket is a new server client, untracked.
        self._data.register_connect_callback(self._on_data_connect)

        self._data_lock = threading.Lock()  # one command at a time on the tracked connection
        self._meta = threading.Lock()  # flights, epoch, identities, counts, local stores
        self._epoch = 0
        self._flights: dict[bytes, bool] = {}  # key of a read in flight -> invalidated since
        # (run_id, client id) of the live, subscribed invalidation connection, or None.
        self._inv_ident: tuple[str, int] | None = None
        self._data_tracked_for: tuple[str, int] | None = None  # ident the data conn redirects to
        self._data_run_id: str | None = None  # the data connection's server, once asked
        self._inv_up = threading.Condition(self._meta)
        self.last_invalidation_error: BaseException | None = None

        self._server_reads = 0
        self._kept = 0
        self._discarded = 0
        self._writes = 0
        self._invalidations = 0
        self._flushes = 0
        self._losses = 0

        self._closing = threading.Event()
        self._closed = False
        self._thread = threading.Thread(
            target=self._listen_forever, name="flexcache-near-cache-invalidations", daemon=True
        )
        self._thread.start()

    # -- public API ------------------------------------------------------------------------

    def get(self, key: Any, default: Any = None) -> Any:
        """The key's value: a local copy, else read from the server (and kept if tracked)."""
        # The str and bytes cases inline: redis-py's Encoder.encode costs more than the
        # local lookup itself.
        if type(key) is str:
            k = key.encode(self._encoding, self._encoding_errors)
        elif type(key) is bytes:
            k = key
        else:
            k = self._key(key)
        value = self.local.get(k, _MISSING)
        if value is _MISSING:
            value = self._read_through(k)
        return default if value is _ABSENT else value

    def set(self, key: Any, value: Any, ttl: float | timedelta | None = None) -> None:
        """``SET`` on the server (``PX`` from ``ttl``, seconds or a timedelta), then a tracked
        read of the key in the same round trip, kept as the local copy."""
        k = self._key(key)
        ms = _ttl_ms(ttl)
        command: tuple[Any, ...] = ("SET", k, value) if ms is None else ("SET", k, value, "PX", ms)
        self._data_call(k, command)

    def delete(self, key: Any) -> bool:
        """``DEL`` on the server; ``True`` if the server held the key."""
        k = self._key(key)
        (removed,) = self._data_call(k, ("DEL", k), read_back=False)
        return bool(removed)

    @property
    def tracking(self) -> bool:
        """Whether local copies are being kept (tracking is established and live)."""
        with self._meta:
            return self._inv_ident is not None and self._data_tracked_for == self._inv_ident

    def wait_until_tracking(self, timeout: float = 5.0) -> bool:
        """Block until tracking is established (``True``) or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            with self._meta:
                while self._inv_ident is None and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._inv_up.wait(left)
            with self._data_lock:
                self._check_open()
                try:
                    if self._ensure_tracking():
                        return True
                except redis.RedisError:
                    pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def stats(self) -> NearCacheStats:
        """Counts since the near cache was made (local hits are the local cache's own)."""
        hits = self.local.stats().hits
        with self._meta:
            return NearCacheStats(
                hits,
                self._server_reads,
                self._kept,
                self._discarded,
                self._writes,
                self._invalidations,
                self._flushes,
                self._losses,
            )

    def close(self) -> None:
        """Stop the invalidation thread, close both connections, drop every local copy."""
        with self._meta:
            if self._closed:
                return
            self._closed = True
            self._inv_up.notify_all()
        self._closing.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        with self._data_lock:
            self._data.disconnect()
        self._drop_all()

    def __enter__(self) -> NearCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the data connection ---------------------------------------------------------------

    def _key(self, key: Any) -> bytes:
        """The key as the server sees it, the local cache's key (redis-py's encoding: str by
        the client's encoding, int and float by repr; others are a DataError)."""
        if type(key) is str:
            return key.encode(self._encoding, self._encoding_errors)
        return bytes(self._encode(key))

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this NearCache is closed")

    def _read_through(self, k: bytes) -> Any:
        with self._data_lock:
            self._check_open()
            # A thread that held the lock before us may just have fetched this key.
            value = self.local.peek(k, _MISSING)
            if value is not _MISSING:
                return value
            (value,) = self._data_call_locked(k, None)
            return value

    def _data_call(self, k: bytes, write: tuple[Any, ...], *, read_back: bool = True) -> list[Any]:
        with self._data_lock:
            self._check_open()
            return self._data_call_locked(k, write, read_back=read_back)

    def _data_call_locked(
        self, k: bytes, write: tuple[Any, ...] | None, *, read_back: bool = True
    ) -> list[Any]:
        try:
            return self._attempt(k, write, read_back=read_back)
        except redis.ConnectionError:
            # Once more on a new connection: the old socket may have died while idle (a
            # CLIENT KILL, a server restart). Every command here may be sent twice (GET,
            # PTTL, SET of one value, DEL). A server that is down fails this one too.
            return self._attempt(k, write, read_back=read_back, count=False)

    def _attempt(
        self, k: bytes, write: tuple[Any, ...] | None, *, read_back: bool, count: bool = True
    ) -> list[Any]:
        """One round trip on the data connection: ``write`` (if any), then ``GET k`` and
        ``PTTL k`` (if ``read_back``), whose reply is kept as the local copy when nothing may
        have changed the key since it was read. Returns the replies of the write (if any)
        followed by the value read."""
        self._ensure_tracking()
        with self._meta:
            epoch = self._epoch
            # Our own writes raise no invalidation for us (NOLOOP), so the copy we hold goes
            # now; the read back below (or the next read) brings the new one.
            if write is not None:
                self.local.delete(k)
                self._writes += count  # a call counts once, retried or not
            if read_back:
                self._flights[k] = False
                if write is None:
                    self._server_reads += count
        commands: list[tuple[Any, ...]] = [] if write is None else [write]
        if read_back:
            commands += [("GET", k), ("PTTL", k)]
        started = time.monotonic()
        try:
            replies = self._roundtrip(commands)
        finally:
            if read_back:
                with self._meta:
                    raced = self._flights.pop(k)
        if not read_back:
            return replies
        value, pttl = replies[-2], replies[-1]
        elapsed = time.monotonic() - started
        self._keep(k, value, pttl, elapsed, epoch, raced)
        return [*replies[:-2], _ABSENT if value is None else value]

    def _keep(
        self, k: bytes, value: Any, pttl: int, elapsed: float, epoch: int, raced: bool
    ) -> None:
        # The server's expiry is at (its clock when it answered PTTL) + pttl, and it answered
        # after we sent: counting our ttl from before the send keeps ours no later.
        ttl: float | None
        if value is None:
            ok, ttl = pttl == -2, None
        elif pttl == -1:
            ok, ttl = True, None
        else:
            ttl = pttl / 1000 - elapsed
            ok = pttl >= 0 and ttl > 0
        with self._meta:
            ok = (
                ok
                and not raced
                and epoch == self._epoch
                and self._inv_ident is not None
                and self._data_tracked_for == self._inv_ident
            )
            if ok:
                try:
                    self.local.put(k, _ABSENT if value is None else value, ttl)
                except ValueError:  # larger than the local cache's max_bytes
                    ok = False
            if ok:
                self._kept += 1
            else:
                self._discarded += 1

    def _roundtrip(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` and read every reply; a server error reply is raised after all
        are read (the connection stays in step), anything else drops the connection."""
        conn = self._data
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            replies: list[Any] = []
            error: ResponseError | None = None
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except ResponseError as e:
                    error = error or e
                    replies.append(e)
        except BaseException:
            # A half-read reply or a dead socket: the connection and its tracking are gone.
            conn.disconnect()
            self._data_lost()
            raise
        if error is not None:
            raise error
        return replies

    def _ensure_tracking(self) -> bool:
        """With the data lock held: redirect the data connection's tracking to the current
        invalidation connection if it is not already. ``False`` when that cannot be done now
        (no invalidation connection, or it is on another server run)."""
        with self._meta:
            ident = self._inv_ident
            if ident is None:
                return False
            if self._data_tracked_for == ident:
                return True
        if self._data_run_id is None:
            (info,) = self._roundtrip([("INFO", "server")])
            self._data_run_id = _run_id(info)
        if self._data_run_id != ident[0]:
            return False  # the server restarted: the invalidation thread will reconnect
        try:
            self._roundtrip([("CLIENT", "TRACKING", "ON", "REDIRECT", ident[1], "NOLOOP")])
        except ResponseError:
            return False  # the redirect client just went away
        with self._meta:
            if self._inv_ident != ident:
                return False
            self._data_tracked_for = ident
            return True

    def _on_data_connect(self, conn: Any) -> None:
        self._data_run_id = None
        self._data_lost()

    def _data_lost(self) -> None:
        with self._meta:
            if self._data_tracked_for is not None:
                self._losses += 1
            self._data_tracked_for = None
            self._drop_all_locked()

    def _drop_all(self) -> None:
        with self._meta:
            self._drop_all_locked()

    def _drop_all_locked(self) -> None:
        self._epoch += 1
        for key in self._flights:
            self._flights[key] = True
        self.local.clear()

    # -- the invalidation connection -------------------------------------------------------

    def _listen_forever(self) -> None:
        backoff = 0.02
        while not self._closing.is_set():
            kwargs = {**self._conn_kwargs, "decode_responses": False}  # keys as bytes
            kwargs["health_check_interval"] = 0  # we PING it ourselves, in subscribed mode
            conn = self._conn_class(**kwargs)
            try:
                conn.connect()
                conn.send_command("CLIENT", "ID")
                client_id = int(conn.read_response())
                conn.send_command("INFO", "server")
                run_id = _run_id(conn.read_response())
                conn.send_command("SUBSCRIBE", _CHANNEL)
                conn.read_response()  # [b"subscribe", channel, 1]
                with self._meta:
                    self._inv_ident = (run_id, client_id)
                    self._inv_up.notify_all()
                backoff = 0.02
                self._listen(conn)
            except (redis.RedisError, OSError) as e:
                self.last_invalidation_error = e
            finally:
                conn.disconnect()
                with self._meta:
                    if self._inv_ident is not None:
                        self._losses += 1
                    self._inv_ident = None
                    self._drop_all_locked()
            self._closing.wait(backoff)
            backoff = min(backoff * 2, 1.0)

    def _listen(self, conn: Any) -> None:
        # Read with a timeout and PING when idle: redis-py 8's default socket_timeout (5 s)
        # would otherwise end a blocking read on a quiet connection, and a dead peer that
        # never closes the socket would go unnoticed.
        poll = min(0.05, self._health_interval)
        last_heard = last_probe = time.monotonic()
        ping_sent: float | None = None
        while not self._closing.is_set():
            if conn.can_read(timeout=poll):
                message = conn.read_response()
                last_heard = time.monotonic()
                ping_sent = None
                self._on_message(message)
            now = time.monotonic()
            if now - last_probe >= poll:
                self._probe_data_connection()
                last_probe = now
            if ping_sent is not None:
                if now - ping_sent > self._health_timeout:
                    raise redis.TimeoutError("the invalidation connection did not answer PING")
            elif now - last_heard >= self._health_interval:
                conn.send_command("PING")
                ping_sent = now

    def _probe_data_connection(self) -> None:
        # The server forgets what a client tracked when that client goes (CLIENT KILL, a
        # timeout, a restart), and in RESP2 nothing tells us: our copies would stay while the
        # keys change. So while nobody uses the data connection, look at it: an idle tracked
        # connection has nothing to read, and a closed one reads as end of file.
        if not self._data_lock.acquire(blocking=False):
            return  # in use: its user sees any error
        try:
            with self._meta:
                tracked = self._data_tracked_for is not None  # so it is connected
            if tracked and self._data.can_read(timeout=0):
                raise redis.ConnectionError("unexpected data on the idle data connection")
        except (redis.RedisError, OSError):
            self._data.disconnect()
            self._data_lost()
        finally:
            self._data_lock.release()

    def _on_message(self, message: Any) -> None:
        if not isinstance(message, list) or len(message) < 3 or message[0] != b"message":
            return  # a PONG ([b"pong", b""]) or a subscribe confirmation
        keys = message[2]
        with self._meta:
            if keys is None:  # FLUSHALL / FLUSHDB: every key
                self._flushes += 1
                self._drop_all_locked()
                return
            self._invalidations += len(keys)
            for key in keys:
                if key in self._flights:
                    self._flights[key] = True
                self.local.delete(key)
