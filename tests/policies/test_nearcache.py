"""The near cache (``policies.nearcache``) against the real Redis: answers are kept in process,
and dropped when Redis reports a write by anyone, a pending change's marker, a flush, or when the
invalidation connection is lost. What it keeps is never trusted longer than the store would be."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from policies import nearcache, store
from tests.policies.test_propagation_store import allowed_actions, entry
from tests.waiting import wait_for


@pytest.fixture(autouse=True)
def _empty_store(clean_store: None, settings) -> None:  # type: ignore[no-untyped-def]
    settings.POLICY_NEAR_CACHE = True


def near() -> nearcache.NearCache:
    cache = store._near(store.namespace())
    assert cache is not None
    wait_for(cache.trusted, 5, every_s=0.005)
    return cache


def read_until_kept(cache: nearcache.NearCache, **key: str) -> store.StoredSet:
    """Read until the answer is kept. Redis's message about this test's own publish can arrive
    while the first read is in flight, and an answer read across an invalidation is not kept."""
    name = f"{store.namespace()}set:{key['unique_id']}" if "unique_id" in key else None
    name = name or f"{store.namespace()}arn:{key['arn']}"

    def kept() -> store.StoredSet | None:
        found = store.read(**key)
        return found if found is not None and name in cache else None

    return wait_for(kept, 2, every_s=0.005)


@contextlib.contextmanager
def written_by_another_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Writes in this block reach the near cache only as Redis's invalidation messages, as a
    propagation task's writes in a Celery worker do (this process's own writes also drop their
    keys at once)."""
    with monkeypatch.context() as patch:
        patch.setattr(store, "_forget", lambda keys: None)
        yield


def test_it_keeps_an_answer_and_drops_it_when_another_process_publishes(monkeypatch):
    cache = near()
    store.publish([entry(10, "s3:GetObject")])
    first = read_until_kept(cache, unique_id="AIDATEST")
    assert allowed_actions(first) == ["s3:GetObject"]
    assert store.read(unique_id="AIDATEST") is first  # kept: no second trip to Redis
    assert len(cache) == 1

    with written_by_another_process(monkeypatch):
        store.publish([entry(11, "s3:PutObject")])

    wait_for(lambda: len(cache) == 0, 2, every_s=0.005)
    assert allowed_actions(store.read(unique_id="AIDATEST")) == ["s3:PutObject"]


def test_a_pending_change_marked_elsewhere_stops_the_kept_answer_being_trusted(monkeypatch):
    cache = near()
    store.publish([entry(10, "s3:GetObject", deps=("AIDATEST", "ANPAPOLICY"))])
    read_until_kept(cache, arn="arn:aws:iam::111111111111:user/test")
    read_until_kept(cache, unique_id="AIDATEST")

    with written_by_another_process(monkeypatch):
        store.mark_pending(entity_ids=["ANPAPOLICY"], seq=11)

    wait_for(lambda: len(cache) == 0, 2, every_s=0.005)
    assert store.read(unique_id="AIDATEST") is None
    assert store.read(arn="arn:aws:iam::111111111111:user/test") is None


def test_this_process_reads_its_own_marker_at_once():
    cache = near()
    store.publish([entry(10, "s3:GetObject", deps=("AIDATEST", "ANPAPOLICY"))])
    read_until_kept(cache, unique_id="AIDATEST")

    store.mark_pending(entity_ids=["ANPAPOLICY"], seq=11)

    assert store.read(unique_id="AIDATEST") is None  # no wait for the message


def test_a_flush_of_redis_empties_it():
    cache = near()
    store.publish([entry(10, "s3:GetObject")])
    read_until_kept(cache, unique_id="AIDATEST")

    store.client().flushdb()

    wait_for(lambda: len(cache) == 0, 2, every_s=0.005)
    assert store.read(unique_id="AIDATEST") is None


def test_losing_the_invalidation_connection_empties_it_until_it_is_back():
    cache = near()
    store.publish([entry(10, "s3:GetObject")])
    read_until_kept(cache, unique_id="AIDATEST")

    killed = store.client().execute_command("CLIENT", "KILL", "TYPE", "pubsub")

    assert killed >= 1
    wait_for(lambda: not cache.trusted(), 2)
    assert len(cache) == 0
    assert store.read(unique_id="AIDATEST") is not None  # from Redis, not kept meanwhile
    wait_for(cache.trusted, 5, every_s=0.005)
    read_until_kept(cache, unique_id="AIDATEST")


def test_an_answer_read_while_something_was_invalidated_is_not_kept():
    cache = near()
    generation = cache.generation()

    cache.invalidate(["pc:unrelated"])
    cache.put("k", "v", built_from=["k"], as_of=time.time(), generation=generation)

    assert cache.get("k", max_age_s=60) is None
    cache.put("k", "v", built_from=["k"], as_of=time.time(), generation=cache.generation())
    assert cache.get("k", max_age_s=60) == "v"


def test_a_kept_answer_is_not_trusted_beyond_the_staleness_bound_in_force_now(settings):
    cache = near()
    store.publish([entry(10, "s3:GetObject")])
    read_until_kept(cache, unique_id="AIDATEST")

    settings.POLICY_MAX_STALENESS_S = 0
    time.sleep(0.01)

    assert store.read(unique_id="AIDATEST") is None
