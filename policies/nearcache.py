"""A process-local copy of compiled-policy store answers, invalidated by Redis itself.

Reading a principal's entry from Redis costs a network round trip and a Lua script per decision,
more than the decision itself. Each process (a gunicorn worker, a Celery worker) therefore keeps
the answers it has read, and drops them the moment Redis reports a write to a key they were
built from. Redis does the reporting: *server-assisted client-side caching* ("Client-side
caching in Redis", redis.io/docs/latest/develop/reference/client-side-caching/), broadcasting
mode. One connection per process turns on ``CLIENT TRACKING ... BCAST`` for the store's entry,
ARN-index and marker prefixes, redirected to itself, and subscribes to
``__redis__:invalidate``. Every write to such a key, by any client (a propagation task, a change
marking itself pending, a script), and every ``FLUSHDB``/``FLUSHALL``, arrives as a message that
a daemon thread applies to the cache.

What may be trusted, and why:

- An answer is kept only when the invalidation connection was subscribed before the read was
  sent and nothing was invalidated, nor the connection lost, while the read was in flight (a
  *generation* counter taken before the read and compared before keeping it). A write that
  Redis executed after our read always produces a message after it.
- While the connection is down, or has not answered a PING for ``SILENT_LIMIT_S``, the cache is
  empty and unused: every read goes to Redis as before. A connection that dies silently can
  therefore keep an answer alive for at most ``SILENT_LIMIT_S``, far inside the store's staleness
  bound (``settings.POLICY_MAX_STALENESS_S``), which every hit still checks.
- Writes made by this process (``policies.store``'s publish and mark functions) drop the keys they
  write synchronously too, so a process reads its own writes without waiting for the message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

INVALIDATE_CHANNEL = "__redis__:invalidate"
PING_EVERY_S = 0.5
# No word from Redis (a message or a PONG) for this long: the connection is not trusted.
SILENT_LIMIT_S = 2.0
RECONNECT_DELAY_S = 0.5
CAPACITY = 100_000


class NearCache:
    """Answers by request key, each with the Redis keys it was built from."""

    def __init__(self, url: str, *, namespace: str) -> None:
        self.url = url
        self.namespace = namespace
        # The store's entries, ARN index and markers (``policies.store``).
        self.prefixes = (f"{namespace}set:", f"{namespace}arn:", f"{namespace}m:")
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[Any, float, tuple[str, ...]]] = {}
        self._dependents: dict[str, set[str]] = {}
        self._generation = 0
        self._connected = False
        self._last_heard = 0.0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="policy-near-cache", daemon=True)
        self._thread.start()

    # --- the request side ------------------------------------------------------------------

    def trusted(self) -> bool:
        return self._connected and time.monotonic() - self._last_heard <= SILENT_LIMIT_S

    def get(self, key: str, *, max_age_s: float) -> Any | None:
        """The kept answer for ``key``, or None (unknown, older than ``max_age_s``, or the cache
        not trusted)."""
        if not self.trusted():
            return None
        item = self._answers.get(key)
        if item is None:
            return None
        answer, as_of, _ = item
        if time.time() - as_of > max_age_s:
            with self._lock:
                self._drop(key)
            return None
        return answer

    def generation(self) -> int | None:
        """Take before a read; pass to ``put``. None: do not keep what the read returns."""
        return self._generation if self.trusted() else None

    def put(
        self,
        key: str,
        answer: Any,
        *,
        built_from: Iterable[str],
        as_of: float,
        generation: int | None,
    ) -> None:
        """Keep ``answer`` (current as of the wall-clock instant ``as_of``) unless something was
        invalidated since ``generation`` was taken."""
        if generation is None:
            return
        sources = tuple(built_from)
        with self._lock:
            if generation != self._generation or not self._connected:
                return
            if len(self._answers) >= CAPACITY:
                self._clear()
            self._drop(key)
            self._answers[key] = (answer, as_of, sources)
            for source in sources:
                self._dependents.setdefault(source, set()).add(key)

    def invalidate(self, redis_keys: Iterable[str]) -> None:
        with self._lock:
            self._generation += 1
            for redis_key in redis_keys:
                for key in self._dependents.pop(redis_key, ()):
                    self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._clear()

    def stop(self) -> None:
        self._stopped.set()
        self._set_connected(False)

    def __len__(self) -> int:
        return len(self._answers)

    def __contains__(self, key: str) -> bool:
        return key in self._answers

    # --- internals (the lock is held) ------------------------------------------------------

    def _drop(self, key: str) -> None:
        item = self._answers.pop(key, None)
        if item is None:
            return
        for source in item[2]:
            dependents = self._dependents.get(source)
            if dependents is not None:
                dependents.discard(key)
                if not dependents:
                    del self._dependents[source]

    def _clear(self) -> None:
        self._answers.clear()
        self._dependents.clear()

    def _set_connected(self, connected: bool) -> None:
        with self._lock:
            self._generation += 1
            self._connected = connected
            self._clear()

    # --- the invalidation thread -----------------------------------------------------------

    def _listen(self) -> None:
        while not self._stopped.is_set():
            try:
                self._listen_once()
            except Exception as exc:
                if not self._stopped.is_set():
                    logger.warning("near-cache invalidation connection lost: %s", exc)
            self._set_connected(False)
            self._stopped.wait(RECONNECT_DELAY_S)

    def _listen_once(self) -> None:
        import redis

        pool = redis.ConnectionPool.from_url(
            self.url, protocol=2, socket_timeout=SILENT_LIMIT_S, socket_connect_timeout=1.0
        )
        connection = pool.make_connection()
        try:
            connection.connect()
            connection.send_command("CLIENT", "ID")
            client_id = connection.read_response()
            tracking: list[Any] = ["CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST"]
            for prefix in self.prefixes:
                tracking += ["PREFIX", prefix]
            connection.send_command(*tracking)
            connection.read_response()
            connection.send_command("SUBSCRIBE", INVALIDATE_CHANNEL)
            connection.read_response()
            self._last_heard = time.monotonic()
            self._set_connected(True)
            ping_sent: float | None = None
            while not self._stopped.is_set():
                now = time.monotonic()
                if ping_sent is None and now - self._last_heard >= PING_EVERY_S:
                    connection.send_command("PING")
                    ping_sent = now
                if ping_sent is not None and now - ping_sent > SILENT_LIMIT_S:
                    raise TimeoutError("Redis did not answer PING")
                if not connection.can_read(timeout=PING_EVERY_S / 2):
                    continue
                message = connection.read_response()
                self._last_heard = time.monotonic()
                kind = message[0]
                if kind == b"pong":
                    ping_sent = None
                elif kind == b"message":
                    keys = message[2]
                    if keys is None:  # FLUSHDB / FLUSHALL
                        self.clear()
                    else:
                        self.invalidate(k.decode() for k in keys)
        finally:
            connection.disconnect()
