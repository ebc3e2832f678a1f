"""Faults around the worker and Redis, with the real worker: stopped, killed mid-fan-out, Redis
flushed. In every case decisions stay correct meanwhile (from PostgreSQL) and converge after.

The cast: Alice's company (``account``); each test makes its own users.
"""

from __future__ import annotations

import json

import pytest

from identity import naming
from identity import services as identity_services
from identity.models import Group, GroupMembership, User
from policies import access, propagation, store
from policies import services as policy_services
from policies.models import ChangeEvent
from tests.waiting import wait_for

pytestmark = pytest.mark.worker

ALLOW_GET = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
)


@pytest.fixture(autouse=True)
def _empty_store(clean_store: None) -> None:
    """Each test starts with no compiled sets in Redis (see tests.worker.clean_store)."""


def nothing_pending() -> bool:
    return not ChangeEvent.objects.filter(processed_at__isnull=True).exists()


def test_it_propagates_every_change_made_while_the_worker_was_stopped(
    transactional_db, account, root_actor, running_worker
):
    running_worker.stop()
    names = [f"s{i:02d}" for i in range(50)]
    for name in names:
        identity_services.create_user(account=account, user_name=name, actor=root_actor)
        policy_services.put_user_policy(
            account=account,
            user_name=name,
            policy_name="read",
            policy_document=ALLOW_GET,
            actor=root_actor,
        )
    assert ChangeEvent.objects.filter(processed_at__isnull=True).count() == 100
    meanwhile = access.decide_for_principal(User.objects.get(name="s07").arn, "s3:GetObject", "*")
    assert (meanwhile.source, meanwhile.decision.decision) == ("database", "allowed")

    running_worker.start()

    wait_for(nothing_pending, 30)
    for user in User.objects.filter(name__in=names):
        result = access.decide_for_principal(user.arn, "s3:GetObject", "*")
        assert (result.source, result.decision.decision) == ("store", "allowed")


def test_it_rebuilds_after_redis_is_flushed_and_decides_from_the_database_meanwhile(
    transactional_db, account, root_actor, running_worker
):
    names = [f"f{i:02d}" for i in range(20)]
    for name in names:
        identity_services.create_user(account=account, user_name=name, actor=root_actor)
        policy_services.put_user_policy(
            account=account,
            user_name=name,
            policy_name="read",
            policy_document=ALLOW_GET,
            actor=root_actor,
        )
    wait_for(nothing_pending, 30)
    users = list(User.objects.filter(name__in=names))
    wait_for(lambda: store.read(unique_id=users[-1].unique_id), 10)

    store.client().flushdb()
    store.clear_local_cache()
    meanwhile = access.decide_for_principal(users[0].arn, "s3:GetObject", "*")

    assert (meanwhile.source, meanwhile.decision.decision) == ("database", "allowed")
    for user in users:
        wait_for(lambda u=user: store.read(unique_id=u.unique_id), 15)
        result = access.decide_for_principal(user.arn, "s3:GetObject", "*")
        assert (result.source, result.decision.decision) == ("store", "allowed")


def _stamps(keys: list[str]) -> list[int]:
    ns = store.namespace()
    pipe = store.client().pipeline(transaction=False)
    for key in keys:
        pipe.hget(f"{ns}set:{key}", "seq")
    return [int(v) if v is not None else 0 for v in pipe.execute()]


def test_it_converges_after_a_worker_is_killed_in_the_middle_of_a_fan_out(
    transactional_db, account, root_actor, running_worker
):
    identity_services.create_group(account=account, group_name="everyone", actor=root_actor)
    group = Group.objects.get(name="everyone")
    users = User.objects.bulk_create(
        User(
            account=account,
            name=f"m{i:05d}",
            unique_id=naming.new_unique_id(naming.USER_ID_PREFIX),
            password="!",
        )
        for i in range(10000)
    )
    GroupMembership.objects.bulk_create(GroupMembership(group=group, user=u) for u in users)
    keys = [u.unique_id for u in sorted(users, key=lambda u: u.pk)]

    policy_services.put_group_policy(
        account=account,
        group_name="everyone",
        policy_name="read",
        policy_document=ALLOW_GET,
        actor=root_actor,
    )
    change = ChangeEvent.objects.order_by("-id").first()
    # The first chunk is published: the fan-out is under way. Kill the worker now.
    wait_for(lambda: min(_stamps(keys[:20])) >= change.pk, 20)
    running_worker.kill()

    assert ChangeEvent.objects.get(pk=change.pk).processed_at is None
    assert min(_stamps(keys)) < change.pk
    running_worker.start()

    wait_for(lambda: propagation.wait_until_propagated(change.pk, timeout_s=0.1), 30)
    assert min(_stamps(keys)) >= change.pk
    result = access.decide_for_principal(users[-1].arn, "s3:GetObject", "*")
    assert (result.source, result.decision.decision) == ("store", "allowed")
