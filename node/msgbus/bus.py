"""The message bus: publish/subscribe, point-to-point endpoints and request/response.

Everything is dispatched synchronously on the caller's thread (the kernel thread), so a handler
runs to completion before ``publish``/``send`` returns and there is no locking.

Why publish looks the way it does: in a backtest it runs for every tick, so its cost is one dict
lookup (concrete topic -> tuple of handlers, resolved once) and a for-loop over that tuple. Pattern
matching happens only when a topic is first seen or when the subscriptions matching it change.
Because each dispatch iterates an immutable tuple taken at the start, a handler that subscribes or
unsubscribes while a message is being dispatched never disturbs that dispatch: the change applies
from the next ``publish``.

Topic patterns: ``*`` matches any run of characters (possibly empty, dots included), ``?`` exactly
one character; every other character, ``[`` included, matches only itself.

No state lives at module level: two buses in one process share nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[Any], object]


def topic_matches(topic: str, pattern: str) -> bool:
    """True if ``topic`` matches ``pattern`` (``*`` = any run, ``?`` = one char, rest literal).

    Greedy scan with a single backtrack point (the last ``*`` seen): linear for typical topics and
    never worse than O(len(topic) * len(pattern)).
    """
    if "*" not in pattern and "?" not in pattern:
        return topic == pattern
    t = p = 0
    n_t, n_p = len(topic), len(pattern)
    star = -1  # index in pattern of the last '*'
    resume = 0  # index in topic that the last '*' currently absorbs up to
    while t < n_t:
        if p < n_p:
            c = pattern[p]
            if c == "*":
                star, resume = p, t
                p += 1
                continue
            if c == "?" or c == topic[t]:
                t += 1
                p += 1
                continue
        if star < 0:
            return False
        # Let the last '*' absorb one more character and retry from there.
        resume += 1
        t, p = resume, star + 1
    while p < n_p and pattern[p] == "*":
        p += 1
    return p == n_p


@dataclass(frozen=True, slots=True)
class Subscription:
    """One (pattern, handler) subscription. Dispatch order: higher priority first, then ``sequence``."""

    topic_pattern: str
    handler: Handler
    priority: int
    sequence: int


@dataclass(frozen=True, slots=True)
class Request:
    """Delivered to an endpoint by :meth:`MessageBus.request`; answer with ``respond(correlation_id, ...)``."""

    correlation_id: str
    payload: Any
    ts: int  # UNIX ns from the bus clock when the request was made


@dataclass(frozen=True, slots=True)
class Response:
    """Passed to the requester's callback by :meth:`MessageBus.respond`."""

    correlation_id: str
    payload: Any
    ts: int  # UNIX ns from the bus clock when the response was given


class MessageBusError(Exception):
    """Base class for message bus errors."""


class InvalidTopic(MessageBusError, ValueError):
    """A topic or pattern was empty or not a str, or a published topic contained a wildcard."""


class UnknownEndpoint(MessageBusError, KeyError):
    """Nothing is registered at the endpoint."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class EndpointAlreadyRegistered(MessageBusError):
    """An endpoint has exactly one handler; another one is already registered there."""


class EndpointHandlerMismatch(MessageBusError):
    """deregister() was given a handler other than the one registered at the endpoint."""


class UnknownCorrelationId(MessageBusError, KeyError):
    """respond() was given a correlation id this bus never issued."""

    def __str__(self) -> str:
        return str(self.args[0])


class DuplicateResponse(MessageBusError):
    """respond() was called a second time for a request that has already been answered."""


def _check_pattern(pattern: object, what: str) -> str:
    if not isinstance(pattern, str) or not pattern:
        raise InvalidTopic(f"{what} must be a non-empty str, got {pattern!r}")
    return pattern


def deliver_rest(remaining, topic: str, msg: Any, first: Exception) -> None:
    """After a handler raised ``first``: deliver ``msg`` to the ``remaining`` handlers anyway,
    adding each later failure to ``first`` as a note (the caller then re-raises ``first``)."""
    for handler in remaining:
        try:
            handler(msg)
        except Exception as later:
            first.add_note(f"another handler of {topic!r} failed too: {type(later).__name__}: {later}")


class MessageBus:
    """Per-trader bus. ``clock`` only needs ``timestamp_ns()``; it stamps requests and responses."""

    # Caches keyed by concrete topic are cleared when they reach this size, so a caller that
    # publishes to ever-new topics costs memory proportional to this, not to the run length.
    _MAX_CACHED_TOPICS = 65_536

    def __init__(self, trader_id: str, clock: Any, name: str = "MessageBus") -> None:
        if not isinstance(trader_id, str) or not trader_id:
            raise ValueError(f"trader_id must be a non-empty str, got {trader_id!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        self._trader_id = trader_id
        self._name = name
        self._clock = clock
        self._subs: dict[tuple[str, Handler], Subscription] = {}
        self._patterns: dict[str, list[Subscription]] = {}
        self._cache: dict[str, tuple[Handler, ...]] = {}
        self._match_memo: dict[tuple[str, str], bool] = {}
        self._seq = 0
        self._endpoints: dict[str, Handler] = {}
        self._pending: dict[str, Callable[[Response], object]] = {}
        self._corr_prefix = f"{name}-"
        self._corr_next = 1
        self.sent_count = 0
        self.req_count = 0
        self.res_count = 0
        self.pub_count = 0

    @property
    def trader_id(self) -> str:
        return self._trader_id

    @property
    def name(self) -> str:
        return self._name

    # -- publish / subscribe ---------------------------------------------------------------------

    def publish(self, topic: str, msg: Any) -> None:
        """Deliver ``msg`` to every handler whose pattern matches ``topic``, in dispatch order.

        A handler that raises does not keep the message from the handlers after it: they run,
        and then the first exception propagates to the caller (later ones are added to it as
        notes). Why: the subscribers of one topic are independent parties (a user's strategy, the
        portfolio, the stream that the node's durable state is rebuilt from), and a bug in one of
        them must not leave the others without an event the rest of the system has seen.
        """
        self.pub_count += 1
        handlers = self._cache.get(topic)
        if handlers is None:
            handlers = self._cache_topic(topic)
        remaining = iter(handlers)  # on an exception, the rest are served from where it stopped
        try:
            for handler in remaining:
                handler(msg)
        except Exception as first:
            deliver_rest(remaining, topic, msg, first)
            raise

    def subscribe(self, topic_pattern: str, handler: Handler, priority: int = 0) -> None:
        """Subscribe ``handler`` to topics matching ``topic_pattern``.

        Higher ``priority`` runs first; equal priorities run in subscription order. Subscribing the
        same (pattern, handler) again is a no-op and keeps the original priority.
        """
        _check_pattern(topic_pattern, "topic_pattern")
        if not callable(handler):
            raise TypeError(f"handler for '{topic_pattern}' must be callable, got {handler!r}")
        if type(priority) is not int:
            raise TypeError(f"priority must be an int, got {priority!r}")
        key = (topic_pattern, handler)
        if key in self._subs:
            return
        self._seq += 1
        sub = Subscription(topic_pattern, handler, priority, self._seq)
        self._subs[key] = sub
        self._patterns.setdefault(topic_pattern, []).append(sub)
        self._refresh_topics_matching(topic_pattern)

    def unsubscribe(self, topic_pattern: str, handler: Handler) -> bool:
        """Remove a subscription. Returns False if it did not exist (unsubscribing is idempotent)."""
        sub = self._subs.pop((topic_pattern, handler), None)
        if sub is None:
            return False
        subs = self._patterns[topic_pattern]
        subs.remove(sub)
        if not subs:
            del self._patterns[topic_pattern]
        self._refresh_topics_matching(topic_pattern)
        return True

    def has_subscribers(self, topic: str) -> bool:
        """True if publishing to the concrete ``topic`` would reach at least one handler."""
        handlers = self._cache.get(topic)
        if handlers is None:
            handlers = self._cache_topic(topic)
        return bool(handlers)

    def subscriptions(self, pattern: str | None = None) -> list[Subscription]:
        """All subscriptions in subscription order; with ``pattern``, those whose own topic pattern
        matches it (e.g. ``subscriptions("data.*")`` lists every subscription on a data topic)."""
        subs = sorted(self._subs.values(), key=lambda s: s.sequence)
        if pattern is None:
            return subs
        return [s for s in subs if topic_matches(s.topic_pattern, pattern)]

    def topics(self) -> list[str]:
        """The distinct topic patterns that have at least one subscriber, sorted."""
        return sorted(self._patterns)

    def _matches(self, topic: str, pattern: str) -> bool:
        key = (topic, pattern)
        result = self._match_memo.get(key)
        if result is None:
            if len(self._match_memo) >= self._MAX_CACHED_TOPICS:
                self._match_memo.clear()
            result = self._match_memo[key] = topic_matches(topic, pattern)
        return result

    def _resolve(self, topic: str) -> tuple[Handler, ...]:
        matching = [
            sub for pattern, subs in self._patterns.items() if self._matches(topic, pattern) for sub in subs
        ]
        matching.sort(key=lambda s: (-s.priority, s.sequence))
        return tuple(sub.handler for sub in matching)

    def _cache_topic(self, topic: str) -> tuple[Handler, ...]:
        """First sight of a topic: validate it once (off the hot path) and cache its handlers."""
        if not isinstance(topic, str) or not topic:
            raise InvalidTopic(f"topic must be a non-empty str, got {topic!r}")
        if "*" in topic or "?" in topic:
            raise InvalidTopic(
                f"cannot publish to '{topic}': wildcards belong in subscription patterns, "
                "publish to a concrete topic"
            )
        if len(self._cache) >= self._MAX_CACHED_TOPICS:
            self._cache.clear()
        handlers = self._cache[topic] = self._resolve(topic)
        return handlers

    def _refresh_topics_matching(self, pattern: str) -> None:
        # Only cached topics that this pattern matches can have changed. Rebinding a value does not
        # alter the dict's size, so iterating while assigning is safe; in-flight dispatches keep
        # iterating the old tuple.
        cache = self._cache
        for topic in cache:
            if self._matches(topic, pattern):
                cache[topic] = self._resolve(topic)

    # -- point to point --------------------------------------------------------------------------

    def register(self, endpoint: str, handler: Handler) -> None:
        """Make ``handler`` the single receiver of ``send(endpoint, ...)``."""
        _check_pattern(endpoint, "endpoint")
        if not callable(handler):
            raise TypeError(f"handler for endpoint '{endpoint}' must be callable, got {handler!r}")
        current = self._endpoints.get(endpoint)
        if current is not None:
            if current == handler:
                return
            raise EndpointAlreadyRegistered(
                f"endpoint '{endpoint}' already has handler {current!r}; deregister it first"
            )
        self._endpoints[endpoint] = handler

    def deregister(self, endpoint: str, handler: Handler) -> None:
        """Remove ``handler`` from ``endpoint``; it must be the handler registered there."""
        current = self._endpoints.get(endpoint)
        if current is None:
            raise UnknownEndpoint(self._unknown_endpoint_message(endpoint))
        if current != handler:
            raise EndpointHandlerMismatch(
                f"endpoint '{endpoint}' is registered to {current!r}, not {handler!r}; "
                "pass the handler that was registered"
            )
        del self._endpoints[endpoint]

    def send(self, endpoint: str, msg: Any) -> None:
        """Deliver ``msg`` to the handler registered at ``endpoint``."""
        handler = self._endpoints.get(endpoint)
        if handler is None:
            raise UnknownEndpoint(self._unknown_endpoint_message(endpoint))
        self.sent_count += 1
        handler(msg)

    def endpoints(self) -> list[str]:
        """Registered endpoint names, sorted."""
        return sorted(self._endpoints)

    def _unknown_endpoint_message(self, endpoint: object) -> str:
        known = ", ".join(sorted(self._endpoints)) or "none"
        return (
            f"no handler is registered at endpoint '{endpoint}' on bus '{self._name}'; "
            f"register one with MessageBus.register() first (registered: {known})"
        )

    # -- request / response ----------------------------------------------------------------------

    def request(self, endpoint: str, payload: Any, callback: Callable[[Response], object]) -> str:
        """Send ``Request(correlation_id, payload, ts)`` to ``endpoint``; return the correlation id.

        ``callback`` is called once, with the :class:`Response`, when someone calls
        :meth:`respond` with that id (possibly before this method returns). Ids are
        ``"<bus name>-<n>"`` from a per-bus counter, so a replayed backtest issues the same ids.
        """
        handler = self._endpoints.get(endpoint)
        if handler is None:
            raise UnknownEndpoint(self._unknown_endpoint_message(endpoint))
        if not callable(callback):
            raise TypeError(f"callback for request to '{endpoint}' must be callable, got {callback!r}")
        correlation_id = f"{self._corr_prefix}{self._corr_next}"
        self._corr_next += 1
        self._pending[correlation_id] = callback
        self.req_count += 1
        try:
            handler(Request(correlation_id, payload, self._clock.timestamp_ns()))
        except BaseException:
            # The request never reached a handler that could answer it: do not leave it pending.
            self._pending.pop(correlation_id, None)
            raise
        return correlation_id

    def respond(self, correlation_id: str, payload: Any) -> None:
        """Answer the request ``correlation_id``; its callback runs now, exactly once."""
        callback = self._pending.pop(correlation_id, None)
        if callback is None:
            if self._was_issued(correlation_id):
                raise DuplicateResponse(
                    f"request '{correlation_id}' on bus '{self._name}' has already been answered; "
                    "respond exactly once per request"
                )
            raise UnknownCorrelationId(
                f"bus '{self._name}' never issued correlation id {correlation_id!r}; "
                "pass the id from the Request being answered"
            )
        self.res_count += 1
        callback(Response(correlation_id, payload, self._clock.timestamp_ns()))

    def has_pending_request(self, correlation_id: str) -> bool:
        """True if ``correlation_id`` was issued and has not been answered yet."""
        return correlation_id in self._pending

    def _was_issued(self, correlation_id: object) -> bool:
        # Ids are "<prefix><n>" with n counting up from 1, so "issued" needs no growing set.
        if not isinstance(correlation_id, str) or not correlation_id.startswith(self._corr_prefix):
            return False
        number = correlation_id[len(self._corr_prefix) :]
        return (
            number.isascii()
            and number.isdigit()
            and number == str(int(number))
            and 0 < int(number) < self._corr_next
        )

    def __repr__(self) -> str:
        return f"MessageBus(trader_id={self._trader_id!r}, name={self._name!r})"
