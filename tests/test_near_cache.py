"""flexcache.contrib.redis.NearCache against a real redis-server (no mocks, no fakeredis).

Each test starts its own server on 127.0.0.1 with a free port and a temporary directory, and
stops it. Without redis-server on PATH (or without redis-py) these tests fail: `scripts/dev
setup` installs both. FLEXCACHE_SKIP_REDIS=1 turns the failure into a skip, for a machine
that cannot have them (CI never sets it).
"""

from __future__ import annotations

import bisect
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flexcache import FlexCache

try:
    import redis
    from flexcache.contrib.redis import NearCache
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError as e:  # pragma: no cover - the setup installs redis-py
    _IMPORT_ERROR: ImportError | None = e
else:
    _IMPORT_ERROR = None


def _require_redis() -> str:
    why = None
    if _IMPORT_ERROR is not None:
        why = f"redis-py is not installed ({_IMPORT_ERROR})"
    binary = shutil.which("redis-server")
    if why is None and binary is None:
        why = "redis-server is not on PATH"
    if why is not None:
        if os.environ.get("FLEXCACHE_SKIP_REDIS") == "1":
            pytest.skip(f"{why}; FLEXCACHE_SKIP_REDIS=1")
        pytest.fail(f"{why}: run `bash scripts/dev setup` (or set FLEXCACHE_SKIP_REDIS=1)")
    assert binary is not None
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A redis-server process of our own; ``restart()`` keeps the port (the data goes)."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        probe = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        while True:
            try:
                if probe.ping():
                    break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"no redis-server on port {self.port}") from None
                time.sleep(0.01)
        probe.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, protocol: int = 2, **kwargs: Any) -> redis.Redis:
        return redis.Redis(port=self.port, protocol=protocol, **kwargs)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(_require_redis(), tmp_path)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def near(server: Server, protocol: int) -> Iterator[NearCache]:
    nc = NearCache(server.client(protocol), max_items=10_000)
    assert nc.wait_until_tracking(5)
    yield nc
    nc.close()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.002)


def invalidated_since(nc: NearCache, count: int) -> Callable[[], bool]:
    return lambda: nc.stats().invalidations > count


def test_read_through_then_local_hits(near: NearCache, server: Server, protocol: int) -> None:
    other = server.client(protocol)
    other.set("k", "v1")
    assert near.get("k") == b"v1"
    assert near.get("k") == b"v1"
    assert near.get(b"k") == b"v1"  # str and bytes keys name one key
    assert near.get("missing") is None
    assert near.get("missing", "d") == "d"  # a remembered miss, answered locally
    s = near.stats()
    assert (s.server_reads, s.local_hits, s.copies_kept) == (2, 3, 2)
    assert s.hit_ratio == pytest.approx(3 / 5)


def test_write_through(near: NearCache, server: Server, protocol: int) -> None:
    other = server.client(protocol)
    near.set("k", "v1")
    assert other.get("k") == b"v1"
    assert near.get("k") == b"v1"
    assert near.stats().server_reads == 0  # set kept the copy it read back
    near.set("k", 7)
    assert near.get("k") == b"7"  # what GET returns, as a server read would
    assert near.delete("k") is True
    assert other.get("k") is None
    assert near.get("k") is None
    assert near.delete("k") is False


def test_decode_responses(server: Server, protocol: int) -> None:
    with NearCache(server.client(protocol, decode_responses=True)) as nc:
        assert nc.wait_until_tracking(5)
        nc.set("k", "välue")
        assert nc.get("k") == "välue"
        server.client().set("k", "new")
        wait_for(lambda: nc.get("k") == "new")


def test_another_process_writes(near: NearCache, server: Server, protocol: int) -> None:
    server.client().set("k", "v1")
    assert near.get("k") == b"v1"
    before = near.stats().invalidations
    script = (
        "import redis, sys; r = redis.Redis(port=int(sys.argv[1]), protocol=int(sys.argv[2]));"
        " r.set('k', 'v2'); print('done', flush=True)"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(server.port), str(protocol)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    assert out.stdout.strip() == b"done"
    wait_for(invalidated_since(near, before))
    assert near.get("k") == b"v2"  # the next read after the invalidation
    assert near.get("k") == b"v2"


def test_invalidation_raced_by_a_read_keeps_no_copy(server: Server, protocol: int) -> None:
    other = server.client()

    class Racing(NearCache):
        """After a GET's reply is read, another client writes the key and the invalidation
        is applied, all before the reply is considered for keeping: the race made certain."""

        race = False

        def _roundtrip(self, commands: Any) -> list[Any]:
            replies = super()._roundtrip(commands)
            if self.race and commands[-1][0] == "PTTL":
                self.race = False
                before = self.stats().invalidations
                other.set("k", "v2")
                wait_for(invalidated_since(self, before))
            return replies

    with Racing(server.client(protocol)) as nc:
        assert nc.wait_until_tracking(5)
        other.set("k", "v1")
        nc.race = True
        assert nc.get("k") == b"v1"  # the reply, returned, but not kept
        assert nc.stats().copies_discarded == 1
        assert nc.get("k") == b"v2"
        assert nc.stats().server_reads == 2


def test_expiry_on_the_server_bounds_the_copy(near: NearCache, server: Server) -> None:
    other = server.client()
    other.set("k", "v", px=300)
    assert near.get("k") == b"v"
    left = near.local.expires_in(b"k")
    assert left is not None and 0 < left <= 0.3
    wait_for(lambda: other.get("k") is None, timeout=2)
    assert near.get("k") is None  # never outlives the server's key
    # Our own write with a ttl: the copy expires no later than the server's key.
    near.set("t", "v", ttl=0.5)
    left = near.local.expires_in(b"t")
    asked = time.monotonic()
    assert left is not None and 0 < left <= 0.5
    sent = time.monotonic()
    pttl = other.pttl("t")
    # Deadlines, on our clock: the local one is before asked + left; the server's is after
    # the send of PTTL plus its reply (less than 1 ms lost: PTTL counts whole ms).
    assert asked + left <= sent + pttl / 1000 + 0.001
    # A ttl given to a key we hold, by another client, reaches us as an invalidation.
    other.set("p", "v")
    assert near.get("p") == b"v"
    assert near.local.expires_in(b"p") is None
    before = near.stats().invalidations
    other.pexpire("p", 200)
    wait_for(invalidated_since(near, before))
    assert near.get("p") == b"v"
    left = near.local.expires_in(b"p")
    assert left is not None and left <= 0.2


def test_ttl_validation(near: NearCache) -> None:
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            near.set("k", "v", ttl=bad)
    with pytest.raises(TypeError):
        near.set("k", "v", ttl="1")  # type: ignore[arg-type]


@pytest.mark.parametrize("flush", ["flushall", "flushdb"])
def test_flush_drops_every_copy(near: NearCache, server: Server, flush: str) -> None:
    other = server.client()
    for i in range(20):
        other.set(f"k{i}", "v")
        assert near.get(f"k{i}") == b"v"
    assert len(near.local) == 20
    getattr(other, flush)()
    wait_for(lambda: near.stats().flushes == 1)
    assert len(near.local) == 0
    assert near.get("k1") is None
    assert near.stats().tracking_losses == 0
    # Tracking goes on after a flush (the remembered miss above is invalidated too).
    before = near.stats().invalidations
    other.set("k1", "again")
    wait_for(invalidated_since(near, before))
    assert near.get("k1") == b"again"
    before = near.stats().invalidations
    other.set("k1", "later")
    wait_for(invalidated_since(near, before))
    assert near.get("k1") == b"later"


def test_kill_of_the_invalidation_connection(near: NearCache, server: Server) -> None:
    other = server.client()
    other.set("k", "v1")
    assert near.get("k") == b"v1"
    ident = near._inv_ident
    assert ident is not None
    assert other.client_kill_filter(_id=ident[1]) == 1
    other.set("k", "v2")  # its invalidation is lost: nobody to redirect it to
    wait_for(lambda: near.stats().tracking_losses >= 1)
    assert near.get("k") == b"v2"  # no stale read once the loss is seen
    assert near.wait_until_tracking(5)
    assert near._inv_ident != ident
    assert near.get("k") == b"v2"
    before = near.stats().invalidations
    other.set("k", "v3")  # tracked again: invalidations come through the new connection
    wait_for(invalidated_since(near, before))
    assert near.get("k") == b"v3"


def test_kill_of_the_data_connection(near: NearCache, server: Server) -> None:
    other = server.client()
    other.set("k", "v1")
    assert near.get("k") == b"v1"
    # The data connection is the near cache's only normal client; the server forgets what it
    # tracked when it goes, so our copy must go too.
    other.client_kill_filter(_type="normal", skipme=True)
    wait_for(lambda: near.stats().tracking_losses >= 1)
    other.set("k", "v2")
    assert near.get("k") == b"v2"
    assert near.wait_until_tracking(5)
    assert near.get("k") == b"v2"
    before = near.stats().invalidations
    other.set("k", "v3")
    wait_for(invalidated_since(near, before))
    assert near.get("k") == b"v3"


def test_server_restart(near: NearCache, server: Server) -> None:
    server.client().set("k", "v1")
    assert near.get("k") == b"v1"
    server.stop()
    wait_for(lambda: near.stats().tracking_losses >= 1)
    with pytest.raises(redis.ConnectionError):
        near.get("k")  # down: an error, never the old copy
    server.start()
    other = server.client()
    other.set("k", "v2")
    assert near.get("k") == b"v2"
    assert near.wait_until_tracking(5)
    assert near.get("k") == b"v2"
    before = near.stats().invalidations
    other.set("k", "v3")
    wait_for(invalidated_since(near, before))
    assert near.get("k") == b"v3"


def test_server_down_at_start(tmp_path: Path, protocol: int) -> None:
    srv = Server(_require_redis(), tmp_path)
    # No retries with backoff (redis-py 8's default retries a refused connect for seconds).
    client = srv.client(protocol, retry=Retry(NoBackoff(), 0), socket_connect_timeout=0.5)
    with NearCache(client) as nc:
        with pytest.raises(redis.ConnectionError):
            nc.get("k")
        with pytest.raises(redis.ConnectionError):
            nc.set("k", "v")
        assert not nc.wait_until_tracking(0.2)
        wait_for(lambda: isinstance(nc.last_invalidation_error, redis.ConnectionError))
        srv.start()
        try:
            assert nc.wait_until_tracking(5)
            nc.set("k", "v")
            assert nc.get("k") == b"v"
        finally:
            srv.stop()


def test_idle_past_the_socket_timeout(server: Server, protocol: int) -> None:
    # redis-py 8 gives connections a socket timeout; an idle invalidation connection must
    # not be dropped by it (it is read with a timeout and PINGed when quiet).
    client = server.client(protocol, socket_timeout=0.2)
    with NearCache(client, health_check_interval=0.1) as nc:
        assert nc.wait_until_tracking(5)
        other = server.client()
        other.set("k", "v1")
        assert nc.get("k") == b"v1"
        time.sleep(0.8)
        assert nc.stats().tracking_losses == 0
        before = nc.stats().invalidations
        other.set("k", "v2")
        wait_for(invalidated_since(nc, before))
        assert nc.get("k") == b"v2"


def test_constructor_checks(server: Server) -> None:
    client = server.client()
    with pytest.raises(ValueError, match="thread"):
        NearCache(client, FlexCache(thread_safe=False))
    with pytest.raises(ValueError, match="thread_safe"):
        NearCache(client, thread_safe=False)
    with pytest.raises(TypeError):
        NearCache(client, FlexCache(thread_safe=True), max_items=3)
    with pytest.raises(TypeError):
        NearCache(object())  # type: ignore[arg-type]
    nc = NearCache(client, FlexCache(max_items=2, thread_safe=True))
    nc.close()
    nc.close()
    with pytest.raises(RuntimeError, match="closed"):
        nc.get("k")


def test_concurrent_readers_and_writers(server: Server, protocol: int) -> None:
    """Writers write increasing versions, one writer per key (so the server's value of a key
    only grows). A read that started at time t must return at least the last version whose
    write was acknowledged before t - GRACE (GRACE: the invalidation's delivery), and at least
    the last version written through this near cache before t (no grace: our own writes
    replace our copy before they return)."""
    grace = 0.25
    keys = [f"k{i}" for i in range(8)]
    remote_keys, own_keys = keys[:4], keys[4:]
    # acks[key]: (time acknowledged, version) in order; grace_of[key]: how late it may show.
    acks: dict[str, list[tuple[float, int]]] = {k: [(0.0, 0)] for k in keys}
    grace_of = {k: grace if k in remote_keys else 0.0 for k in keys}
    seed = server.client()
    for k in keys:
        seed.set(k, 0)
    stop = threading.Event()
    errors: list[str] = []

    nc = NearCache(server.client(protocol), max_items=1000)
    assert nc.wait_until_tracking(5)

    def writer(key: str, write: Callable[[str, int], object]) -> None:
        version = 0
        while not stop.is_set():
            version += 1
            write(key, version)
            acks[key].append((time.monotonic(), version))
            time.sleep(random.uniform(0.001, 0.02))

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            key = rng.choice(keys)
            started = time.monotonic()
            history = list(acks[key])  # appended by one thread; a copy is consistent
            value = nc.get(key)
            got = int(value)
            times = [t for t, _ in history]
            i = bisect.bisect_right(times, started - grace_of[key]) - 1
            floor = history[i][1]
            if got < floor:
                errors.append(f"{key}: read {got} at {started:.3f}, {floor} was acknowledged")

    threads = [
        threading.Thread(target=writer, args=(k, server.client(protocol).set)) for k in remote_keys
    ]
    threads += [threading.Thread(target=writer, args=(k, nc.set)) for k in own_keys]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join()
    nc.close()
    assert errors == []
    s = nc.stats()
    # Not vacuous: reads were served both ways, and invalidations came.
    assert s.local_hits > 100 and s.server_reads > 100 and s.invalidations > 50, s


def _raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    return sock


def _send(sock: socket.socket, *args: str) -> None:
    out = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    sock.sendall(out.encode())


def _read_some(sock: socket.socket, expect: bytes, timeout: float = 2.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while expect not in data and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def test_why_both_connections_speak_resp2(server: Server) -> None:
    """What NearCache's design rests on, shown on the wire. With REDIRECT, a RESP3 tracking
    client's invalidations go to the redirect target, not to itself as pushes; to a RESP2
    target subscribed to __redis__:invalidate they are pub/sub messages. But the null of a
    flush invalidation is written in the tracking client's protocol: RESP3's `_` reaches the
    RESP2 target, which redis-py's RESP2 parser rejects. So the near cache's two connections
    speak one protocol, RESP2."""
    inv, data, writer = _raw(server.port), _raw(server.port), server.client()
    _send(inv, "CLIENT", "ID")
    inv_id = _read_some(inv, b"\r\n").strip().lstrip(b":").decode()
    _send(inv, "SUBSCRIBE", "__redis__:invalidate")
    assert b"subscribe" in _read_some(inv, b":1\r\n")
    _send(data, "HELLO", "3")
    _read_some(data, b"modules")
    _send(data, "CLIENT", "TRACKING", "ON", "REDIRECT", inv_id)
    assert _read_some(data, b"+OK\r\n").endswith(b"+OK\r\n")
    _send(data, "GET", "k")
    assert _read_some(data, b"_\r\n") == b"_\r\n"
    writer.set("k", "v")
    message = _read_some(inv, b"k\r\n")
    assert message.startswith(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n")
    assert message.endswith(b"*1\r\n$1\r\nk\r\n")
    writer.flushall()
    flush = _read_some(inv, b"_\r\n")
    assert flush.endswith(b"$20\r\n__redis__:invalidate\r\n_\r\n")  # RESP3 null, to RESP2
    data.settimeout(0.2)
    with pytest.raises(TimeoutError):
        data.recv(1)  # no push reached the tracking client itself
    for sock in (inv, data):
        sock.close()
