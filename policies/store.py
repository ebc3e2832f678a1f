"""The compiled-policy store: principals' policy sets published to Redis, read for decisions.

PostgreSQL is the truth; Redis holds a copy that the propagation tasks keep current. Each
principal has one entry (a Redis hash ``<ns>set:<unique id>``) holding the policy *sources*
as JSON (``policies.engine.policy_set_to_json``), the facts a decision needs about the
principal (ARN, tags, ...), the entities it depends on (its groups, the managed policies it
uses, its account) and a **stamp**: the highest change sequence committed when the worker read
the database. ``policies.outbox`` takes the change sequence in commit order, so a stamp ``S``
means "reflects every change up to ``S``", and a newer entry is never replaced by an older one
(the publish script compares stamps inside Redis).

A decision trusts an entry only when

- no unpropagated change touches it: each committed change sets a *marker* (its sequence) on
  the entity it changed, and an entry whose stamp is below the marker of any entity it depends
  on is refused;
- it is not older than ``settings.POLICY_MAX_STALENESS_S``: its age is the time since it was
  compiled or since the last sweep confirmed every pending change had its marker
  (``fresh_at``), whichever is later. A stopped worker or beat therefore turns Redis into
  "not trusted" after the bound, never into stale allows.

Otherwise, and whenever Redis is unreachable, the set is computed from PostgreSQL (slower,
still correct); an error there propagates and the caller denies.

Compiled sets are cached in-process by content digest (an LRU), so a read that must go to Redis
gets no document back when the digest is unchanged; and the answers themselves are kept in
process by the near cache (``policies.nearcache``) until Redis reports a write to a key they were
built from, so a decision usually makes no Redis round trip at all.

The embedded default (no ``REDIS_URL``) has no store: every decision is computed from the
database, which is always current.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from policies import engine, nearcache

logger = logging.getLogger(__name__)

# After a connection error, decisions skip Redis for this long instead of paying a timeout
# each (they are computed from the database meanwhile).
CIRCUIT_OPEN_S = 1.0
LRU_CAPACITY = 4096


class StoreUnavailable(Exception):
    """Redis could not be reached (or answered nonsense); callers use the database."""


# --- connection --------------------------------------------------------------------------

_client_lock = threading.Lock()
_client: Any = None
_circuit_open_until = 0.0


def enabled() -> bool:
    return bool(settings.REDIS_URL)


def namespace() -> str:
    """Key prefix: one namespace per database, so two installations (or a test database and a
    development one) sharing a Redis never read each other's entries."""
    return f"pc:{settings.DATABASES['default']['NAME']}:"


def client() -> Any:
    global _client
    if _client is None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        with _client_lock:
            if _client is None:
                _client = redis.Redis.from_url(
                    settings.REDIS_URL,
                    socket_timeout=0.5,
                    socket_connect_timeout=0.5,
                    retry=Retry(NoBackoff(), 0),
                    health_check_interval=0,
                )
    return _client


def _guard() -> None:
    if _circuit_open_until > time.monotonic():
        raise StoreUnavailable("Redis marked unreachable")


def _trip(exc: Exception) -> StoreUnavailable:
    global _circuit_open_until
    _circuit_open_until = time.monotonic() + CIRCUIT_OPEN_S
    logger.warning("compiled-policy store unreachable: %s", exc)
    return StoreUnavailable(str(exc))


_near_cache: nearcache.NearCache | None = None


def _forget_near_cache_in_child() -> None:
    # The listening thread does not survive a fork (a gunicorn or Celery worker); the child
    # starts its own on first use. (A pid check per read would be a system call per read.)
    global _near_cache
    _near_cache = None


os.register_at_fork(after_in_child=_forget_near_cache_in_child)


def _near(ns: str) -> nearcache.NearCache | None:
    """This process's near cache (``policies.nearcache``) for namespace ``ns``, started on
    first use; None when turned off (``PORTCULLIS_POLICY_NEAR_CACHE=0``)."""
    global _near_cache
    if not settings.POLICY_NEAR_CACHE:
        return None
    cache = _near_cache
    if cache is not None and cache.namespace == ns:
        return cache
    with _client_lock:
        cache = _near_cache
        if cache is None or cache.namespace != ns:
            if cache is not None:
                cache.stop()
            cache = _near_cache = nearcache.NearCache(settings.REDIS_URL, namespace=ns)
    return cache


def near_cache_trusted() -> bool:
    """Whether this process's near cache is in use (it may still miss)."""
    near = _near(namespace())
    return near is not None and near.trusted()


def _forget(keys: Iterable[str]) -> None:
    """Drop what this process kept of keys it is writing (read your own writes at once; other
    processes hear of it from Redis)."""
    near = _near_cache
    if near is not None:
        near.invalidate(keys)


def reset_client() -> None:
    """Forget the connection (after ``REDIS_URL`` changed, e.g. in a test)."""
    global _client, _near_cache
    with _client_lock:
        _client = None
        _scripts.clear()
        if _near_cache is not None:
            _near_cache.stop()
        _near_cache = None
    reset_circuit()
    clear_local_cache()


def reset_circuit() -> None:
    global _circuit_open_until
    _circuit_open_until = 0.0


# --- scripts -----------------------------------------------------------------------------

# KEYS[1] entry, KEYS[2] ARN index (may be ""), ARGV: ns, stamp, at, digest, deps, facts,
# body, arn, tomb. Writes only when the stamp is not older than the stored one.
_PUBLISH = """
local cur = redis.call('HGET', KEYS[1], 'seq')
if cur and tonumber(cur) > tonumber(ARGV[2]) then return 0 end
local oldarn = redis.call('HGET', KEYS[1], 'arn')
if oldarn and oldarn ~= '' and oldarn ~= ARGV[8] then
  redis.call('DEL', ARGV[1] .. 'arn:' .. oldarn)
end
redis.call('HSET', KEYS[1], 'seq', ARGV[2], 'at', ARGV[3], 'digest', ARGV[4], 'deps', ARGV[5],
  'facts', ARGV[6], 'body', ARGV[7], 'arn', ARGV[8], 'tomb', ARGV[9])
if KEYS[2] ~= '' then
  if ARGV[9] == '1' then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], KEYS[1]) end
end
return 1
"""

# KEYS[1] an entry key, or an ARN index key when ARGV[3] == 'arn'. ARGV: ns, known digest.
# Returns nil (no entry) or {seq, at, digest, facts|false, body|false, max marker, fresh_at,
# tomb, entry key, deps}.
_READ = """
local key = KEYS[1]
if ARGV[3] == 'arn' then
  key = redis.call('GET', key)
  if not key then return nil end
end
local e = redis.call('HMGET', key, 'seq', 'at', 'digest', 'deps', 'tomb')
if not e[1] then return nil end
local maxm = 0
local deps = {}
for dep in string.gmatch(e[4] or '', '%S+') do deps[#deps + 1] = ARGV[1] .. 'm:' .. dep end
if #deps > 0 then
  local ms = redis.call('MGET', unpack(deps))
  for i = 1, #ms do
    if ms[i] and tonumber(ms[i]) > maxm then maxm = tonumber(ms[i]) end
  end
end
local facts = false
local body = false
if e[3] ~= ARGV[2] then
  local fb = redis.call('HMGET', key, 'facts', 'body')
  facts = fb[1]
  body = fb[2]
end
local fresh = redis.call('GET', ARGV[1] .. 'fresh_at') or '0'
return {e[1], e[2], e[3], facts, body, tostring(maxm), fresh, e[5] or '', key, e[4] or ''}
"""

# The same for several keys at once (KEYS); ARGV[1] ns, ARGV[1 + i] known digest of KEYS[i],
# ARGV[1 + #KEYS + i] 'arn' when KEYS[i] is an ARN index key. One answer per key (false: none).
_READ_MANY = """
local fresh = redis.call('GET', ARGV[1] .. 'fresh_at') or '0'
local out = {}
local n = #KEYS
for i = 1, n do
  local key = KEYS[i]
  if ARGV[1 + n + i] == 'arn' then key = redis.call('GET', key) end
  local answer = false
  if key then
    local e = redis.call('HMGET', key, 'seq', 'at', 'digest', 'deps', 'tomb')
    if e[1] then
      local maxm = 0
      local deps = {}
      for dep in string.gmatch(e[4] or '', '%S+') do deps[#deps + 1] = ARGV[1] .. 'm:' .. dep end
      if #deps > 0 then
        local ms = redis.call('MGET', unpack(deps))
        for j = 1, #ms do
          if ms[j] and tonumber(ms[j]) > maxm then maxm = tonumber(ms[j]) end
        end
      end
      local facts = false
      local body = false
      if e[3] ~= ARGV[i + 1] then
        local fb = redis.call('HMGET', key, 'facts', 'body')
        facts = fb[1]
        body = fb[2]
      end
      answer = {e[1], e[2], e[3], facts, body, tostring(maxm), fresh, e[5] or '', key, e[4] or ''}
    end
  end
  out[i] = answer
end
return out
"""

# KEYS: marker keys; ARGV[1]: the change sequence. A marker only ever grows.
_MARK = """
for i = 1, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then redis.call('SET', KEYS[i], ARGV[1]) end
end
return #KEYS
"""

# KEYS[1]: a key holding a number; ARGV[1]: a candidate. Keeps the larger.
_SET_MAX = """
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""

_scripts: dict[str, Any] = {}


def _script(name: str, text: str) -> Any:
    script = _scripts.get(name)
    if script is None:
        script = _scripts[name] = client().register_script(text)
    return script


# --- entries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """What the worker publishes for one principal (or a tombstone for a deleted one)."""

    key: str  # unique id (AIDA…, AROA…) of the principal
    stamp: int
    arn: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    body: str = ""  # policy_set_to_json of the sources
    deps: Sequence[str] = ()
    tomb: bool = False

    @property
    def digest(self) -> str:
        if self.tomb:
            return "tomb"
        text = self.body + "\x00" + json.dumps(self.facts, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def publish(entries: Iterable[Entry], *, pipeline_size: int = 500) -> int:
    """Write entries, each only if its stamp is not older than the stored one. Returns how
    many were written. Raises ``StoreUnavailable``."""
    ns = namespace()
    script = _script("publish", _PUBLISH)
    now = f"{time.time():.3f}"
    written = 0
    try:
        pipe = client().pipeline(transaction=False)
        pending = 0
        for entry in entries:
            arn_key = f"{ns}arn:{entry.arn}" if entry.arn else ""
            _forget((f"{ns}set:{entry.key}", arn_key))
            script(
                keys=[f"{ns}set:{entry.key}", arn_key],
                args=[
                    ns,
                    entry.stamp,
                    now,
                    entry.digest,
                    " ".join(entry.deps),
                    json.dumps(entry.facts, separators=(",", ":")),
                    entry.body,
                    entry.arn,
                    "1" if entry.tomb else "",
                ],
                client=pipe,
            )
            pending += 1
            if pending >= pipeline_size:
                written += sum(int(r) for r in pipe.execute())
                pending = 0
        if pending:
            written += sum(int(r) for r in pipe.execute())
    except Exception as exc:
        if _is_connection_error(exc):
            raise _trip(exc) from exc
        raise
    return written


def mark_pending(*, entity_ids: Sequence[str], seq: int) -> None:
    """Record that change ``seq`` touching these entities is not yet propagated."""
    if not entity_ids:
        return
    ns = namespace()
    keys = [f"{ns}m:{e}" for e in entity_ids]
    _forget(keys)
    try:
        _script("mark", _MARK)(keys=keys, args=[seq])
    except Exception as exc:
        raise _trip(exc) from exc


def mark_many(marks: Sequence[tuple[str, int]], *, fresh_at: float | None = None) -> None:
    """Markers for several pending changes, then (optionally) the fresh-at instant."""
    ns = namespace()
    mark = _script("mark", _MARK)
    set_max = _script("set_max", _SET_MAX)
    _forget(f"{ns}m:{entity_id}" for entity_id, _ in marks)
    try:
        pipe = client().pipeline(transaction=False)
        for entity_id, seq in marks:
            mark(keys=[f"{ns}m:{entity_id}"], args=[seq], client=pipe)
        if fresh_at is not None:
            set_max(keys=[f"{ns}fresh_at"], args=[f"{fresh_at:.3f}"], client=pipe)
        pipe.execute()
    except Exception as exc:
        raise _trip(exc) from exc


def _is_connection_error(exc: Exception) -> bool:
    import redis

    return isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError)


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredSet:
    """A trusted entry, compiled."""

    key: str
    stamp: int
    facts: dict[str, Any]
    policy_set: engine.CompiledPolicySet | None  # None for a tombstone or a credential
    tomb: bool
    # What readers derive from ``facts`` (e.g. the engine's Principal), kept with the compiled
    # entry so each reader derives it once per content digest, not once per decision.
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


class _Compiled:
    __slots__ = ("derived", "facts", "policy_set", "tomb")

    def __init__(
        self, facts: dict[str, Any], policy_set: engine.CompiledPolicySet | None, tomb: bool
    ):
        self.facts = facts
        self.policy_set = policy_set
        self.tomb = tomb
        self.derived: dict[str, Any] = {}


_lru: OrderedDict[str, _Compiled] = OrderedDict()
_lru_lock = threading.Lock()
# The digest last seen per entry key, sent to Redis so an unchanged set comes back bodiless.
_known: dict[str, str] = {}


def _lru_get(digest: str) -> _Compiled | None:
    with _lru_lock:
        item = _lru.get(digest)
        if item is not None:
            _lru.move_to_end(digest)
        return item


def _lru_put(digest: str, item: _Compiled) -> None:
    with _lru_lock:
        _lru[digest] = item
        _lru.move_to_end(digest)
        while len(_lru) > LRU_CAPACITY:
            _lru.popitem(last=False)


def clear_local_cache() -> None:
    with _lru_lock:
        _lru.clear()
        _known.clear()
    near = _near_cache
    if near is not None:
        near.clear()


_REFETCH = object()


def _interpret(ns: str, key: str, result: Any) -> Any:
    """A read script's answer as a trusted ``StoredSet``, None, or ``_REFETCH``."""
    if result is None:
        return None
    seq_b, at_b, digest_b, facts_b, body_b, marker_b, fresh_b, tomb_b, entry_key_b = result[:9]
    stamp = int(seq_b)
    if int(marker_b) > stamp:
        return None
    age = time.time() - max(float(at_b), float(fresh_b))
    if age > settings.POLICY_MAX_STALENESS_S:
        return None
    digest = digest_b.decode()
    compiled = _lru_get(digest)
    if compiled is None:
        if not facts_b and digest != "tomb":
            # We sent a digest that Redis matched but our LRU dropped it: fetch again.
            _known.pop(key, None)
            return _REFETCH
        facts = json.loads(facts_b) if facts_b else {}
        if tomb_b == b"1":
            compiled = _Compiled(facts, None, True)
        elif not body_b:
            compiled = _Compiled(facts, None, False)  # a credential's entry: facts only
        else:
            # A set that does not compile raises here: the caller denies (fail closed).
            policy_set = engine.compile_policy_set_from_json(body_b.decode())
            compiled = _Compiled(facts, policy_set, False)
        _lru_put(digest, compiled)
    _known[key] = digest
    return StoredSet(
        key=entry_key_b.decode().removeprefix(f"{ns}set:"),
        stamp=stamp,
        facts=compiled.facts,
        policy_set=compiled.policy_set,
        tomb=compiled.tomb,
        derived=compiled.derived,
    )


def _keep(
    near: nearcache.NearCache | None,
    ns: str,
    key: str,
    result: Any,
    answer: StoredSet | None,
    generation: int | None,
) -> None:
    """Keep a trusted answer in this process's near cache, with every Redis key it was built
    from: the key asked for, the entry (when asked by ARN) and the markers of what it depends
    on. Writing any of them drops it."""
    if near is None or answer is None:
        return
    entry_key = result[8].decode()
    deps = result[9].decode().split() if len(result) > 9 else []
    near.put(
        key,
        answer,
        built_from=[key, entry_key, *(f"{ns}m:{dep}" for dep in deps)],
        as_of=max(float(result[1]), float(result[6])),
        generation=generation,
    )


def read(*, unique_id: str | None = None, arn: str | None = None) -> StoredSet | None:
    """The trusted entry of a principal, or None when Redis has none that may be trusted
    (missing, stale, or older than an unpropagated change). Raises ``StoreUnavailable``."""
    _guard()
    ns = namespace()
    if unique_id is not None:
        key, mode = f"{ns}set:{unique_id}", "id"
    else:
        key, mode = f"{ns}arn:{arn}", "arn"
    near = _near(ns)
    if near is not None:
        kept = near.get(key, max_age_s=settings.POLICY_MAX_STALENESS_S)
        if kept is not None:
            return kept  # type: ignore[no-any-return]
    memo = getattr(_prefetched, "results", None)
    if memo is not None and key in memo:
        result = memo.pop(key)
        generation = _prefetched.generation
    else:
        generation = near.generation() if near is not None else None
        try:
            result = _script("read", _READ)(keys=[key], args=[ns, _known.get(key, ""), mode])
        except Exception as exc:
            raise _trip(exc) from exc
    answer = _interpret(ns, key, result)
    if answer is _REFETCH:
        return read(unique_id=unique_id, arn=arn)
    _keep(near, ns, key, result, answer, generation)
    return answer  # type: ignore[no-any-return]


_prefetched = threading.local()


def _read_many(ns: str, keys: list[str], modes: list[str]) -> list[Any]:
    try:
        return _script("read_many", _READ_MANY)(  # type: ignore[no-any-return]
            keys=keys, args=[ns, *(_known.get(key, "") for key in keys), *modes]
        )
    except Exception as exc:
        raise _trip(exc) from exc


def prefetch(*, ids: Sequence[str] = (), arns: Sequence[str] = ()) -> None:
    """Read these entries in one round trip now; the next ``read`` of each (in this thread)
    uses the answer instead of asking Redis again. ``end_prefetch`` forgets what is left.
    A request that needs the caller's key, the caller's set and the principal's set makes one
    Redis call instead of three, and none when the near cache holds all three."""
    _guard()
    ns = namespace()
    near = _near(ns)
    wanted = [(f"{ns}set:{i}", "id") for i in ids] + [(f"{ns}arn:{a}", "arn") for a in arns]
    if near is not None:
        wanted = [
            (key, mode)
            for key, mode in wanted
            if near.get(key, max_age_s=settings.POLICY_MAX_STALENESS_S) is None
        ]
    if not wanted:
        return
    keys = [key for key, _ in wanted]
    _prefetched.generation = near.generation() if near is not None else None
    results = _read_many(ns, keys, [mode for _, mode in wanted])
    _prefetched.results = dict(zip(keys, results, strict=True))


def end_prefetch() -> None:
    _prefetched.results = None


def read_many_by_arn(arns: Sequence[str]) -> dict[str, StoredSet | None]:
    """``read(arn=…)`` for several principals in one round trip (batch decisions), or none
    when the near cache holds them all."""
    _guard()
    ns = namespace()
    near = _near(ns)
    answers: dict[str, StoredSet | None] = {}
    missing: list[str] = []
    for arn in arns:
        kept = (
            near.get(f"{ns}arn:{arn}", max_age_s=settings.POLICY_MAX_STALENESS_S)
            if near is not None
            else None
        )
        if kept is not None:
            answers[arn] = kept
        else:
            missing.append(arn)
    if not missing:
        return answers
    keys = [f"{ns}arn:{arn}" for arn in missing]
    generation = near.generation() if near is not None else None
    results = _read_many(ns, keys, ["arn"] * len(keys))
    for arn, key, result in zip(missing, keys, results, strict=True):
        answer = _interpret(ns, key, result)
        if answer is _REFETCH:
            answers[arn] = read(arn=arn)
            continue
        _keep(near, ns, key, result, answer, generation)
        answers[arn] = answer
    return answers


# --- bookkeeping keys ----------------------------------------------------------------------


def heartbeat(*, hostname: str, ttl_s: int = 15) -> None:
    ns = namespace()
    now = f"{time.time():.3f}"
    try:
        pipe = client().pipeline(transaction=False)
        pipe.set(f"{ns}worker:{hostname}", now, ex=ttl_s)
        pipe.set(f"{ns}heartbeat", now)
        pipe.execute()
    except Exception as exc:
        raise _trip(exc) from exc


def get_float(name: str) -> float | None:
    value = client().get(namespace() + name)
    return float(value) if value is not None else None


def set_value(name: str, value: str, *, ex: int | None = None, nx: bool = False) -> bool:
    return bool(client().set(namespace() + name, value, ex=ex, nx=nx))


def delete_keys(*names: str) -> None:
    client().delete(*[namespace() + n for n in names])


def flush_namespace() -> int:
    """Delete every key of this installation (tests, and ``propagation_rebuild --flush``)."""
    ns = namespace()
    count = 0
    batch: list[bytes] = []
    for key in client().scan_iter(match=f"{ns}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            count += client().delete(*batch)
            batch = []
    if batch:
        count += client().delete(*batch)
    clear_local_cache()
    return count
