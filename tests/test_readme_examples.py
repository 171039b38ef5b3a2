"""Every code example of the seed README, run as written.

Each example is kept verbatim in a string and executed in a fresh namespace. Names the
README leaves undefined (``requests``, ``create_connection``, ``image_bytes``, ``conn``, and the
``cache`` of the method examples) are stubs put in the namespace first. Where the README and
SPEC disagree, SPEC wins: the absolute-expiry example uses ``datetime(2025, 12, 31, ...)``,
which is in the past, so it makes an already-expired entry and ``set`` returns normally.
"""

# The README's examples are kept verbatim, blank lines with trailing spaces included.
# ruff: noqa: W293
from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from flexcache import FlexCache


def run(source: str, **names: object) -> dict:
    namespace: dict = {"__name__": "readme_example", **names}
    exec(compile(source, "<README>", "exec"), namespace)
    return namespace


QUICK_START = """
from datetime import timedelta
from flexcache import FlexCache

# Create a cache with LRU eviction, max 1000 items
cache = FlexCache(
    eviction_policy='lru',
    max_items=1000,
    max_bytes=10_000,  # 10,000 units (you define what a unit means)
)

# Store a value with 5-minute TTL
cache.set("user:123", {"name": "Alice", "role": "admin"}, ttl=timedelta(minutes=5))

# Retrieve it
user = cache.get("user:123")

# Delete explicitly
cache.delete("user:123")
"""


def test_seed_readme_quick_start() -> None:
    ns = run(QUICK_START)
    assert ns["user"] == {"name": "Alice", "role": "admin"}
    cache = ns["cache"]
    assert cache.items == 0
    assert cache.eviction_policy == "lru"
    assert cache.max_items == 1000
    assert cache.max_bytes == 10_000


def test_seed_readme_constructor_signature_defaults() -> None:
    # The README's constructor block is a signature, not code; check what it states.
    cache = FlexCache(eviction_policy="lru", scan_interval=0.0, max_items=0, max_bytes=0)
    default = FlexCache()
    for name in ("eviction_policy", "scan_interval", "max_items", "max_bytes"):
        assert getattr(cache, name) == getattr(default, name)


SET_RELATIVE = """
# Relative TTL
cache.set("key", "value", ttl=timedelta(hours=1))
"""

SET_ABSOLUTE = """
# Absolute expiration
cache.set("key", "value", ttl=datetime(2025, 12, 31, 23, 59, 59))
"""

SET_FOREVER = """
# No expiration
cache.set("key", "value")
"""

SET_EXAMPLE = SET_RELATIVE + SET_ABSOLUTE + SET_FOREVER


def method_namespace(cache: FlexCache | None = None) -> dict:
    return {
        "cache": FlexCache() if cache is None else cache,
        "timedelta": timedelta,
        "datetime": datetime,
    }


def test_seed_readme_set_relative_ttl() -> None:
    ns = run(SET_RELATIVE, **method_namespace())
    assert ns["cache"].get("key") == "value"


def test_seed_readme_set_absolute_expiration_in_the_past() -> None:
    assert datetime(2025, 12, 31, 23, 59, 59) < datetime.now()
    ns = run(SET_ABSOLUTE, **method_namespace())
    cache = ns["cache"]
    assert "key" not in cache
    assert cache.get("key") is None
    cache.scan()
    assert cache.items == 0


def test_seed_readme_set_no_expiration() -> None:
    ns = run(SET_FOREVER, **method_namespace())
    assert ns["cache"].get("key") == "value"


def test_seed_readme_set_examples_in_sequence() -> None:
    # The three lines are alternatives: run one after the other on one cache, the second
    # meets the live entry of the first and raises KeyError, as the README says it must.
    with pytest.raises(KeyError):
        run(SET_EXAMPLE, **method_namespace())
    cache = FlexCache()
    run(SET_ABSOLUTE + SET_FOREVER, **method_namespace(cache))
    assert cache.get("key") == "value"


GET_EXAMPLE = """
value = cache.get("key")
if value is not None:
    print(f"Found: {value}")
"""

DELETE_EXAMPLE = """
if cache.delete("key"):
    print("Deleted")
"""


def test_seed_readme_get(capsys: pytest.CaptureFixture[str]) -> None:
    cache = FlexCache()
    run(GET_EXAMPLE, cache=cache)
    assert capsys.readouterr().out == ""
    cache.set("key", "value")
    run(GET_EXAMPLE, cache=cache)
    assert capsys.readouterr().out == "Found: value\n"


def test_seed_readme_delete(capsys: pytest.CaptureFixture[str]) -> None:
    cache = FlexCache()
    cache.set("key", "value")
    run(DELETE_EXAMPLE, cache=cache)
    assert capsys.readouterr().out == "Deleted\n"
    run(DELETE_EXAMPLE, cache=cache)
    assert capsys.readouterr().out == ""


def test_seed_readme_scan_and_clear(tracker) -> None:
    cache = FlexCache()
    value = tracker("v")
    cache.set("key", value)
    run("\ncache.scan()\n", cache=cache)
    assert cache.items == 1
    run("\ncache.clear()\n", cache=cache)
    assert cache.items == 0
    assert value.closes == 1


POLICY_EXAMPLES = {
    "lru": "\ncache = FlexCache(eviction_policy='lru', max_items=100)\n",
    "fifo": "\ncache = FlexCache(eviction_policy='fifo', max_items=100)\n",
    "random": "\ncache = FlexCache(eviction_policy='random', max_items=100)\n",
}


@pytest.mark.parametrize("policy", sorted(POLICY_EXAMPLES))
def test_seed_readme_eviction_policy(policy: str) -> None:
    cache = run(POLICY_EXAMPLES[policy], FlexCache=FlexCache)["cache"]
    assert cache.eviction_policy == policy
    for n in range(150):
        cache.set(str(n), n)
    assert cache.items == 100


CACHED_IMAGE = """
class CachedImage:
    def __init__(self, data: bytes):
        self.data = data
    
    def item_size(self) -> int:
        return len(self.data)  # track actual bytes

cache = FlexCache(eviction_policy='lru', max_bytes=100 * 1024 * 1024)  # 100 MB
cache.set("img:1", CachedImage(image_bytes))
"""


def test_seed_readme_cached_image() -> None:
    image_bytes = b"\x89PNG" + bytes(1020)
    ns = run(CACHED_IMAGE, FlexCache=FlexCache, image_bytes=image_bytes)
    cache = ns["cache"]
    assert cache.bytes == 1024
    assert cache.get("img:1").data == image_bytes
    with pytest.raises(ValueError):
        cache.set("too big", ns["CachedImage"](bytes(100 * 1024 * 1024 + 1)))
    assert cache.items == 1


API_QUOTA = """
class ApiQuota:
    def __init__(self, response: dict):
        self.response = response
        self.cost = response.get("api_cost", 1)
    
    def item_size(self) -> int:
        return self.cost  # track API credits consumed

cache = FlexCache(eviction_policy='lru', max_bytes=1000)  # max 1000 API credits
"""


def test_seed_readme_api_quota() -> None:
    ns = run(API_QUOTA, FlexCache=FlexCache)
    cache, quota = ns["cache"], ns["ApiQuota"]
    cache.set("a", quota({"api_cost": 600}))
    cache.set("b", quota({}))
    assert cache.bytes == 601
    cache.set("c", quota({"api_cost": 500}))
    assert "a" not in cache
    assert cache.bytes == 501


DATABASE_CONNECTION = """
class DatabaseConnection:
    def __init__(self, conn):
        self.conn = conn
    
    def close(self):
        self.conn.close()
        print("Connection closed")

cache = FlexCache(eviction_policy='lru', max_items=10)
cache.set("db:1", DatabaseConnection(conn))

# When evicted or expired, close() is called automatically
"""


class StubConnection:
    def __init__(self) -> None:
        self.closed = 0
        self.disconnected = 0

    def close(self) -> None:
        self.closed += 1

    def disconnect(self) -> None:
        self.disconnected += 1


def test_seed_readme_database_connection(capsys: pytest.CaptureFixture[str]) -> None:
    conn = StubConnection()
    ns = run(DATABASE_CONNECTION, FlexCache=FlexCache, conn=conn)
    cache = ns["cache"]
    assert cache.items == 1
    for n in range(9):
        cache.set(f"other:{n}", n)
    assert conn.closed == 0
    cache.set("one too many", 0)
    assert conn.closed == 1
    assert capsys.readouterr().out == "Connection closed\n"


PROTOCOL = """
from typing import Protocol

class CacheEntry(Protocol):
    def item_size(self) -> int:
        \"\"\"Return size in units for cache accounting.\"\"\"
        ...
    
    def close(self) -> None:
        \"\"\"Called when item is removed from cache.\"\"\"
        ...
"""


def test_seed_readme_protocol_reference(tracker) -> None:
    ns = run(PROTOCOL)
    assert "CacheEntry" in ns
    cache = FlexCache(max_bytes=10)
    cache.set("v", tracker("v", 4))
    cache.set("plain", object())  # both methods are optional: size 1, no cleanup
    assert cache.bytes == 5
    cache.clear()
    assert tracker.closed == ["v"]


THREAD_SAFETY = """
import threading

cache = FlexCache(eviction_policy='lru', max_items=1000)
lock = threading.Lock()

def cached_get(key):
    with lock:
        return cache.get(key)

def cached_set(key, value, ttl=None):
    with lock:
        cache.set(key, value, ttl=ttl)
"""


def test_seed_readme_thread_safety() -> None:
    ns = run(THREAD_SAFETY, FlexCache=FlexCache)
    cached_get, cached_set = ns["cached_get"], ns["cached_set"]

    def work(n: int) -> None:
        for i in range(50):
            cached_set(f"{n}:{i}", i, ttl=timedelta(hours=1) if i % 2 else None)
            assert cached_get(f"{n}:{i}") == i

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ns["cache"].items == 200


HTTP_CACHE = """
from datetime import timedelta
from flexcache import FlexCache

response_cache = FlexCache(
    eviction_policy='lru',
    max_items=10000,
)

def get_api_response(url: str) -> dict:
    cached = response_cache.get(url)
    if cached is not None:
        return cached
    
    response = requests.get(url).json()
    response_cache.set(url, response, ttl=timedelta(minutes=5))
    return response
"""


class StubRequests:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def get(self, url: str) -> StubRequests:
        self.calls.append(url)
        self._url = url
        return self

    def json(self) -> dict:
        return {"url": self._url}


def test_seed_readme_http_response_cache() -> None:
    requests = StubRequests()
    ns = run(HTTP_CACHE, requests=requests)
    get_api_response = ns["get_api_response"]
    first = get_api_response("https://example.org/a")
    assert first == {"url": "https://example.org/a"}
    assert get_api_response("https://example.org/a") is first
    get_api_response("https://example.org/b")
    assert requests.calls == ["https://example.org/a", "https://example.org/b"]


SESSION_STORE = """
from datetime import timedelta
from flexcache import FlexCache

sessions = FlexCache(
    eviction_policy='lru',
    max_items=100000,
)

def create_session(session_id: str, user_data: dict):
    sessions.set(session_id, user_data, ttl=timedelta(hours=24))

def get_session(session_id: str) -> dict | None:
    return sessions.get(session_id)

def logout(session_id: str):
    sessions.delete(session_id)
"""


def test_seed_readme_session_store() -> None:
    ns = run(SESSION_STORE)
    ns["create_session"]("s1", {"user": "alice"})
    assert ns["get_session"]("s1") == {"user": "alice"}
    ns["logout"]("s1")
    assert ns["get_session"]("s1") is None
    assert ns["get_session"]("never") is None
    with pytest.raises(KeyError):
        ns["create_session"]("s2", {})
        ns["create_session"]("s2", {})


CONNECTION_POOL = """
from flexcache import FlexCache

class PooledConnection:
    def __init__(self, host: str):
        self.conn = create_connection(host)
    
    def item_size(self) -> int:
        return 1  # each connection counts as 1
    
    def close(self):
        self.conn.disconnect()

pool = FlexCache(
    eviction_policy='lru',
    max_items=50,
)

def get_connection(host: str):
    conn = pool.get(host)
    if conn is None:
        conn = PooledConnection(host)
        pool.set(host, conn, ttl=timedelta(minutes=30))
    return conn
"""


def test_seed_readme_connection_pool() -> None:
    made: list[StubConnection] = []

    def create_connection(host: str) -> StubConnection:
        made.append(StubConnection())
        return made[-1]

    # The README block uses ``timedelta`` without importing it: it is one of the stubs.
    ns = run(CONNECTION_POOL, create_connection=create_connection, timedelta=timedelta)
    get_connection, pool = ns["get_connection"], ns["pool"]
    first = get_connection("db-0")
    assert get_connection("db-0") is first
    assert len(made) == 1
    for n in range(1, 51):
        get_connection(f"db-{n}")
    assert pool.items == 50
    assert first.conn.disconnected == 1
    assert sum(conn.disconnected for conn in made) == 1
    pool.clear()
    assert all(conn.disconnected == 1 for conn in made)
