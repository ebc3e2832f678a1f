"""The compiled-policy store's rules, against the real Redis: stamps only move forward, an entry
older than a pending change or than the staleness bound is not trusted, and change sequences are
handed out in commit order (what makes a stamp mean "every change up to here")."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection, transaction

from policies import store
from policies.outbox import Kind, record_change


@pytest.fixture(autouse=True)
def _empty_store(clean_store: None) -> None:
    """Each test starts with no compiled sets in Redis (see tests.worker.clean_store)."""


def body(action: str) -> str:
    statement = {"Effect": "Allow", "Action": action, "Resource": "*"}
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    return json.dumps({"v": 1, "identity": [["p", document]], "boundary": None, "session": None})


def entry(stamp: int, action: str, *, deps: tuple[str, ...] = ("AIDATEST",)) -> store.Entry:
    return store.Entry(
        key="AIDATEST",
        stamp=stamp,
        arn="arn:aws:iam::111111111111:user/test",
        facts={"kind": "user", "arn": "arn:aws:iam::111111111111:user/test"},
        body=body(action),
        deps=deps,
    )


def allowed_actions(found: store.StoredSet) -> list[str]:
    sources = json.loads(found.policy_set.to_json())["identity"]
    return [json.loads(document)["Statement"][0]["Action"] for _, document in sources]


def test_it_never_replaces_a_newer_set_with_an_older_one():
    assert store.publish([entry(10, "s3:GetObject")]) == 1

    assert store.publish([entry(9, "s3:PutObject")]) == 0

    found = store.read(unique_id="AIDATEST")
    assert found.stamp == 10
    assert allowed_actions(found) == ["s3:GetObject"]
    assert store.read(arn="arn:aws:iam::111111111111:user/test").stamp == 10


def test_it_refuses_an_entry_older_than_an_unpropagated_change_touching_it():
    store.publish([entry(10, "s3:GetObject", deps=("AIDATEST", "ANPAPOLICY"))])

    store.mark_pending(entity_ids=["ANPAPOLICY"], seq=11)

    assert store.read(unique_id="AIDATEST") is None
    store.publish([entry(11, "s3:PutObject", deps=("AIDATEST", "ANPAPOLICY"))])
    assert allowed_actions(store.read(unique_id="AIDATEST")) == ["s3:PutObject"]


def test_it_refuses_an_entry_older_than_the_staleness_bound(settings):
    store.publish([entry(10, "s3:GetObject")])
    assert store.read(unique_id="AIDATEST") is not None

    settings.POLICY_MAX_STALENESS_S = 0
    time.sleep(0.01)

    assert store.read(unique_id="AIDATEST") is None


def test_it_hands_out_change_sequences_in_commit_order(transactional_db, account):
    ids: dict[str, float] = {}
    first_holds = threading.Event()
    release = threading.Event()

    def first() -> None:
        with transaction.atomic():
            ids["first"] = record_change(kind=Kind.USER, account_id=account.id, entity_id="A").pk
            first_holds.set()
            release.wait(10)
        connection.close()

    def second() -> None:
        first_holds.wait(10)
        with transaction.atomic():
            ids["second"] = record_change(kind=Kind.USER, account_id=account.id, entity_id="B").pk
            ids["second_at"] = time.monotonic()
        connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_holds.wait(10)
    time.sleep(0.3)
    blocked = "second" not in ids
    released_at = time.monotonic()
    release.set()
    for thread in threads:
        thread.join(10)

    assert blocked
    assert ids["second"] > ids["first"]
    assert ids["second_at"] >= released_at
