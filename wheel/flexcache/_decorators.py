"""Memoizing decorators: ``cached`` for functions, ``cachedmethod`` for methods.

Both keep results in a FlexCache and make concurrent calls with one key run the
function once (single-flight): among threads for plain functions, among the tasks of
one event loop for ``async def`` functions. The record of calls in flight lives in
the wrapper, not in the cache, so any FlexCache will do.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterator
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any, Concatenate, NamedTuple, ParamSpec, Protocol, TypeVar, cast, overload

from flexcache._core import CachedCall, FlexCache, TooLargeError
from flexcache._flights import SharedTask

__all__ = ["CacheInfo", "CachedFunction", "CachedMethod", "cached", "cachedmethod"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_Self = TypeVar("_Self")
_T_co = TypeVar("_T_co", covariant=True)
_Self_contra = TypeVar("_Self_contra", contravariant=True)

_Ttl = timedelta | datetime | float | None
_KeyFunction = Callable[..., Hashable]
_KeyOfCall = Callable[[tuple[Any, ...], dict[str, Any]], Hashable]

_MISSING: Any = object()
"""What ``cache.get`` answers on a miss, so that a cached ``None`` is a hit."""


class CacheInfo(NamedTuple):
    """The counts of a ``cached`` function, as ``functools.lru_cache`` reports them."""

    hits: int
    """Calls answered from the cache."""
    misses: int
    """Calls that ran the function or waited for another call running it."""
    maxsize: int | None
    """The cache's ``max_items``, or ``None`` when it has no item limit."""
    currsize: int
    """``len(cache)`` now."""


class CachedFunction(Protocol[_P, _T_co]):
    """What ``cached`` makes of a function: the same call, plus its cache and counts."""

    __name__: str
    __qualname__: str

    @property
    def __wrapped__(self) -> Callable[_P, _T_co]: ...
    @property
    def cache(self) -> FlexCache[Any, Any]:
        """The FlexCache holding the results."""

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _T_co: ...
    def cache_info(self) -> CacheInfo:
        """This function's hits and misses, and the size of its cache."""

    def cache_clear(self) -> None:
        """Empty the cache (closing its values) and start the counts again from zero."""


class CachedMethod(Protocol[_Self_contra, _P, _T_co]):
    """What ``cachedmethod`` makes of a method: the same method, bound as usual."""

    __name__: str
    __qualname__: str

    @property
    def __wrapped__(self) -> Callable[Concatenate[_Self_contra, _P], _T_co]: ...
    def __call__(self, instance: _Self_contra, /, *args: _P.args, **kwargs: _P.kwargs) -> _T_co: ...
    @overload
    def __get__(
        self, instance: None, owner: type[Any], /
    ) -> CachedMethod[_Self_contra, _P, _T_co]: ...
    @overload
    def __get__(self, instance: _Self_contra, owner: type[Any], /) -> Callable[_P, _T_co]: ...


# --- keys ------------------------------------------------------------------------------------


class _KeywordMark:
    """Stands between the positional and the keyword arguments in a default key.

    Nobody else has it, so ``f(1)`` (key ``(1,)``) and ``f(x=1)`` (key
    ``(MARK, ('x', 1))``) can never meet. It pickles and copies as the one instance,
    so a copied or reloaded cache still holds keys the wrapper finds.
    """

    __slots__ = ()

    def __reduce__(self) -> str:
        return "_KEYWORD_MARK"

    def __repr__(self) -> str:
        return "<keyword arguments>"


_KEYWORD_MARK = _KeywordMark()


def _default_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    if not kwargs:
        return args
    # Names are unique, so sorting the pairs never compares two values.
    return (*args, _KEYWORD_MARK, *sorted(kwargs.items()))


def _key_of_call(key: _KeyFunction | None) -> _KeyOfCall:
    if key is None:
        return _default_key
    if not callable(key):
        raise TypeError(f"key must be callable or None, not {type(key).__name__}")
    custom = key
    return lambda args, kwargs: custom(*args, **kwargs)


# --- storing ---------------------------------------------------------------------------------


def _check_ttl(ttl: _Ttl) -> None:
    """Refuse a bad ``ttl`` at decoration, by ``set``'s own rules, rather than after a call."""
    FlexCache._check_ttl(ttl)


# --- calls in flight -------------------------------------------------------------------------

_computing: ContextVar[frozenset[object]] = ContextVar("flexcache_computing", default=frozenset())
"""The flights whose function runs in this thread or task (or in a task it started)."""


class _ThreadFlight:
    """A call in progress that other threads with the same key wait for."""

    __slots__ = ("_done", "_error", "_value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def succeed(self, value: Any) -> None:
        self._value = value
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    def outcome(self) -> Any:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._value


def _retrieve_outcome(task: asyncio.Task[Any]) -> None:
    # Every waiter may have gone: mark the exception retrieved so that asyncio does not
    # log it as never retrieved.
    if not task.cancelled():
        task.exception()


class _Memo:
    """The calls in flight and the counts of one decorated function."""

    def __init__(self, ttl: _Ttl, *, counting: bool) -> None:
        self._ttl = ttl
        self._counting = counting
        # Guards the flights and the counts. Never held while the function, a close()
        # or an item_size() runs, so that those may call the wrapper again.
        self._lock = threading.Lock()
        self._flights: dict[Hashable, Any] = {}
        # ``next()`` of an ``itertools.count`` is one C call: atomic where ``+= 1`` on an
        # attribute is not, and without the lock, which the hit path cannot afford.
        # They are never replaced (the hit path holds ``next`` of the one for hits): reading
        # one advances it, and a clear starts from where it is, so each has a skew, the
        # ``next()`` calls that were not a hit or a miss.
        self._hits = itertools.count()
        self._misses = itertools.count()
        self._hit_skew = 0
        self._miss_skew = 0
        _memos.add(self)

    def forget_flights(self) -> None:
        """After ``os.fork()``, in the child: the threads and event loops running the
        flights are not there, so their callers would wait forever; the lock may have been
        held by one of those threads."""
        self._lock = threading.Lock()
        self._flights = {}

    def count(self, *, hit: bool) -> None:
        if self._counting:
            next(self._hits if hit else self._misses)

    @property
    def hits(self) -> Iterator[int]:
        """The count of hits, for the hit path to advance itself (``next``)."""
        return self._hits

    def info(self, cache: FlexCache[Any, Any]) -> CacheInfo:
        with self._lock:
            hits = next(self._hits) - self._hit_skew
            misses = next(self._misses) - self._miss_skew
            self._hit_skew += 1
            self._miss_skew += 1
        return CacheInfo(hits, misses, cache.max_items or None, len(cache))

    def clear(self, cache: FlexCache[Any, Any]) -> None:
        with self._lock:
            self._hit_skew = next(self._hits) + 1
            self._miss_skew = next(self._misses) + 1
        cache.clear()

    def _join(self, flight_key: Hashable, new_flight: Callable[[], Any]) -> tuple[Any, bool]:
        """The flight of ``flight_key``, and whether this caller has just started it."""
        with self._lock:
            flight = self._flights.get(flight_key)
            if flight is not None:
                return flight, False
            flight = self._flights[flight_key] = new_flight()
            return flight, True

    def _land(self, flight_key: Hashable, flight: object) -> None:
        with self._lock:
            if self._flights.get(flight_key) is flight:
                del self._flights[flight_key]

    def _store(self, cache: FlexCache[Any, Any], key: Hashable, value: Any) -> None:
        try:
            cache.set(key, value, self._ttl)
        except KeyError as error:
            # Someone outside this wrapper's flights (the cache used directly, another
            # function sharing it) stored the key meanwhile: their entry stays, and this
            # call still returns its own result.
            if not (error.args and error.args[0] is key):
                raise
        except TooLargeError:
            pass  # larger than max_bytes on its own: handed back, not stored

    def call(
        self,
        cache: FlexCache[Any, Any],
        key: Hashable,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """A call of a plain function that missed the cache."""
        flight_key = (id(cache), key)
        flight, leading = self._join(flight_key, _ThreadFlight)
        if not leading:
            self.count(hit=False)
            if flight in _computing.get():
                # The function calls itself with its own key: waiting would never end.
                return self._run(cache, key, function, args, kwargs, flight)
            return flight.outcome()
        try:
            # A call that ended between our miss and our start may have stored the key.
            value = cache.peek(key, _MISSING)
            if value is _MISSING:
                self.count(hit=False)
                value = self._run(cache, key, function, args, kwargs, flight)
            else:
                self.count(hit=True)
        except BaseException as error:
            try:
                self._land(flight_key, flight)
            finally:
                flight.fail(error)
            raise
        # The value was stored before the flight lands: a caller that finds no flight
        # finds the value.
        try:
            self._land(flight_key, flight)
        finally:
            flight.succeed(value)
        return value

    def _run(
        self,
        cache: FlexCache[Any, Any],
        key: Hashable,
        function: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        flight: object,
    ) -> Any:
        token = _computing.set(_computing.get() | {flight})
        try:
            value = function(*args, **kwargs)
        finally:
            _computing.reset(token)
        self._store(cache, key, value)
        return value

    async def call_async(
        self,
        cache: FlexCache[Any, Any],
        key: Hashable,
        function: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """A call of an ``async def`` function that missed the cache."""
        loop = asyncio.get_running_loop()
        # A task can only await a task of its own loop, so each loop has its own flights.
        flight_key = (loop, id(cache), key)
        flight, leading = self._join(flight_key, SharedTask)
        self.count(hit=False)
        if not leading and flight in _computing.get():
            # The computation awaits its own key: it would wait for itself forever.
            value = await function(*args, **kwargs)
            self._store(cache, key, value)
            return value
        if leading:
            computation = self._compute(flight_key, flight, cache, key, function, args, kwargs)
            try:
                task = loop.create_task(computation)
            except BaseException:
                computation.close()
                self._land(flight_key, flight)
                raise
            task.add_done_callback(_retrieve_outcome)
            flight.task = task
        return await self._await(flight_key, flight)

    async def _compute(
        self,
        flight_key: Hashable,
        flight: SharedTask,
        cache: FlexCache[Any, Any],
        key: Hashable,
        function: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        _computing.set(_computing.get() | {flight})  # in this task's own copy of the context
        try:
            value = await function(*args, **kwargs)
            self._store(cache, key, value)
            return value
        finally:
            self._land(flight_key, flight)

    async def _await(self, flight_key: Hashable, flight: SharedTask) -> Any:
        return await flight.wait(abandoned=functools.partial(self._land, flight_key, flight))


_memos: weakref.WeakSet[_Memo] = weakref.WeakSet()


def _forget_flights_after_fork() -> None:
    for memo in list(_memos):
        memo.forget_flights()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_flights_after_fork)


# --- wrappers --------------------------------------------------------------------------------


def _check_callable(function: object) -> None:
    if not callable(function):
        raise TypeError(f"cannot memoize a {type(function).__name__}: it is not callable")


def _function_wrapper(
    function: Callable[..., Any], memo: _Memo, cache: FlexCache[Any, Any], key_of: _KeyOfCall
) -> Callable[..., Any]:
    _check_callable(function)
    get = cache.get
    hits = memo.hits  # the count itself, never replaced: next(hits) counts a hit
    plain_key = key_of is _default_key
    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            key = args if plain_key and not kwargs else key_of(args, kwargs)
            value = get(key, _MISSING)
            if value is _MISSING:
                return await memo.call_async(cache, key, function, args, kwargs)
            next(hits)
            return value

        return async_wrapper

    # The hit path, as lean as Python allows (each name a local, the default key of
    # positional arguments alone taken as it comes): it is what a memoized call costs.
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = args if plain_key and not kwargs else key_of(args, kwargs)
        value = get(key, _MISSING)
        if value is _MISSING:
            return memo.call(cache, key, function, args, kwargs)
        next(hits)
        return value

    if not plain_key:
        return wrapper

    def missed(args: tuple[Any, ...]) -> Any:
        # The native call looked the key up (and the cache counted the miss).
        return memo.call(cache, args, function, args, {})

    wrapper.missed = missed  # type: ignore[attr-defined]
    # With the default key, the call itself is native: the argument tuple is the key,
    # looked up and counted in one call (CachedCall, src/py/memo.rs); keyword arguments
    # and misses come back to the wrapper above.
    native = CachedCall(cache, wrapper)
    functools.update_wrapper(native, function)
    return native


def _method_wrapper(
    method: Callable[..., Any],
    memo: _Memo,
    cache_of: Callable[[Any], FlexCache[Any, Any]],
    key_of: _KeyOfCall,
) -> Callable[..., Any]:
    _check_callable(method)
    if inspect.iscoroutinefunction(method):

        @functools.wraps(method)
        async def async_wrapper(self: Any, /, *args: Any, **kwargs: Any) -> Any:
            cache = cache_of(self)
            key = key_of(args, kwargs)
            value = cache.get(key, _MISSING)
            if value is _MISSING:
                return await memo.call_async(cache, key, method, (self, *args), kwargs)
            return value

        return async_wrapper

    @functools.wraps(method)
    def wrapper(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        cache = cache_of(self)
        key = key_of(args, kwargs)
        value = cache.get(key, _MISSING)
        if value is _MISSING:
            return memo.call(cache, key, method, (self, *args), kwargs)
        return value

    return wrapper


# --- the decorators --------------------------------------------------------------------------


@overload
def cached(
    cache: Callable[_P, _T], /, *, key: _KeyFunction | None = None, ttl: _Ttl = None
) -> CachedFunction[_P, _T]: ...
@overload
def cached(
    cache: FlexCache[Any, Any] | None = None,
    *,
    key: _KeyFunction | None = None,
    ttl: _Ttl = None,
    **cache_args: Any,
) -> Callable[[Callable[_P, _T]], CachedFunction[_P, _T]]: ...
def cached(
    cache: FlexCache[Any, Any] | Callable[..., Any] | None = None,
    *,
    key: _KeyFunction | None = None,
    ttl: _Ttl = None,
    **cache_args: Any,
) -> Any:
    """Memoize a function (plain or ``async def``) in a FlexCache.

    ``cache`` is the FlexCache to use; without it one is made as
    ``FlexCache(**cache_args)``. ``key(*args, **kwargs)`` makes the cache key
    (default: the positional arguments, then the keyword arguments sorted by name).
    ``ttl`` goes to every store, as ``FlexCache.set`` takes it. Exceptions are not
    cached; a result larger than ``max_bytes`` is returned and not stored; concurrent
    calls with one key run the function once.

    Given a function instead of a cache, ``cached`` decorates it at once: bare
    ``@cached`` is ``@cached()``, a FlexCache of its own with no limits.
    """
    if callable(cache) and not isinstance(cache, FlexCache):
        return cached(None, key=key, ttl=ttl, **cache_args)(cache)
    key_of = _key_of_call(key)
    _check_ttl(ttl)
    if cache is None:
        FlexCache(**cache_args)  # refuse bad settings now, not at the first decoration
    elif cache_args:
        names = ", ".join(sorted(cache_args))
        raise TypeError(f"cached() takes a cache or the arguments to make one, not both ({names})")
    elif not isinstance(cache, FlexCache):
        raise TypeError(f"cached() needs a FlexCache, not a {type(cache).__name__}")
    given = cache

    def decorate(function: Callable[_P, _T]) -> CachedFunction[_P, _T]:
        # A decorator made once and applied to two functions gives each a cache of its
        # own: with the default key, a shared one would mix their results.
        the_cache = FlexCache(**cache_args) if given is None else given
        memo = _Memo(ttl, counting=True)
        wrapper: Any = _function_wrapper(function, memo, the_cache, key_of)
        # Hits answered natively are counted there; a clear starts them from where they are.
        native_hits_at_clear = [0]

        def native_hits() -> int:
            return wrapper.hits if isinstance(wrapper, CachedCall) else 0

        def cache_info() -> CacheInfo:
            """This function's hits and misses, and the size of its cache."""
            info = memo.info(the_cache)
            return info._replace(hits=info.hits + native_hits() - native_hits_at_clear[0])

        def cache_clear() -> None:
            """Empty the cache (closing its values) and start the counts again from zero."""
            native_hits_at_clear[0] = native_hits()
            memo.clear(the_cache)

        wrapper.cache = the_cache
        wrapper.cache_info = cache_info
        wrapper.cache_clear = cache_clear
        return cast(CachedFunction[_P, _T], wrapper)

    return decorate


def cachedmethod(
    cache: Callable[[Any], FlexCache[Any, Any]],
    *,
    key: _KeyFunction | None = None,
    ttl: _Ttl = None,
) -> Callable[[Callable[Concatenate[_Self, _P], _T]], CachedMethod[_Self, _P, _T]]:
    """Memoize a method (plain or ``async def``) in the FlexCache ``cache(self)`` returns.

    As ``cached``, except that ``self`` is left out of the key: ``key(*args, **kwargs)``
    gets the other arguments, and instances whose ``cache(self)`` is one FlexCache share
    its entries. The wrapper has no ``cache_info``/``cache_clear``: ask the caches.
    """
    if isinstance(cache, FlexCache) or not callable(cache):
        raise TypeError(
            "cachedmethod() takes a function cache(self) -> FlexCache, such as "
            "lambda self: self._cache; for one cache shared by every instance, use cached()"
        )
    key_of = _key_of_call(key)
    _check_ttl(ttl)
    cache_of = cache

    def decorate(method: Callable[Concatenate[_Self, _P], _T]) -> CachedMethod[_Self, _P, _T]:
        wrapper = _method_wrapper(method, _Memo(ttl, counting=False), cache_of, key_of)
        return cast(CachedMethod[_Self, _P, _T], wrapper)

    return decorate
