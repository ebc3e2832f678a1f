"""Propagation: committed changes reach Redis through a real Celery worker; decisions read them.

The cast: Alice's company (``account``) and its root user. Each test makes its users itself.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from identity import services as identity_services
from identity.models import User
from policies import access, propagation, store
from policies import services as policy_services
from policies.models import ChangeEvent, InlinePolicy
from policies.outbox import Kind
from tests.conftest import actor_for
from tests.waiting import wait_for

pytestmark = pytest.mark.worker


@pytest.fixture(autouse=True)
def _empty_store(clean_store: None) -> None:
    """Each test starts with no compiled sets in Redis (see tests.worker.clean_store)."""


ALLOW_GET = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
        ],
    }
)
ALLOW_PUT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"}],
    }
)


def last_change() -> int:
    return ChangeEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_it_publishes_a_users_set_after_commit_and_decides_from_it(
    transactional_db, account, root_actor, running_worker
):
    alice = identity_services.create_user(account=account, user_name="alice", actor=root_actor)
    policy_services.put_user_policy(
        account=account,
        user_name="alice",
        policy_name="read",
        policy_document=ALLOW_GET,
        actor=root_actor,
    )
    change = last_change()

    wait_for(lambda: propagation.wait_until_propagated(change))
    entry = store.read(unique_id=alice.unique_id)

    assert entry is not None
    assert entry.stamp >= change
    assert entry.facts["arn"] == "arn:aws:iam::111111111111:user/alice"
    result = access.decide_for_principal(alice.arn, "s3:GetObject", "arn:aws:s3:::bucket/key")
    assert result.source == "store"
    assert result.sequence >= change
    assert result.decision.decision == "allowed"
    assert [(m.policy_id, m.sid) for m in result.decision.matched_statements] == [
        ("arn:aws:iam::111111111111:user/alice#inline/read", "Read")
    ]
    assert access.decide(actor_for(alice), "s3:PutObject", "*").decision == "implicitDeny"


def test_it_publishes_the_same_sources_the_database_path_reads(
    transactional_db, account, root_actor, running_worker
):
    policy = policy_services.create_policy(
        account=account, policy_name="put", policy_document=ALLOW_PUT, actor=root_actor
    )
    identity_services.create_group(account=account, group_name="writers", actor=root_actor)
    identity_services.create_user(account=account, user_name="bob", actor=root_actor)
    identity_services.add_user_to_group(
        account=account, group_name="writers", user_name="bob", actor=root_actor
    )
    policy_services.attach_group_policy(
        account=account, group_name="writers", policy_arn=policy.arn, actor=root_actor
    )
    policy_services.put_group_policy(
        account=account,
        group_name="writers",
        policy_name="get",
        policy_document=ALLOW_GET,
        actor=root_actor,
    )
    bob = User.objects.get(name="bob")
    wait_for(lambda: propagation.wait_until_propagated(last_change()))

    entry = store.read(unique_id=bob.unique_id)

    assert entry is not None
    assert (
        entry.policy_set.to_json()
        == access.compiled_policy_set_from_database(actor_for(bob)).to_json()
    )


def test_it_fans_a_group_policy_out_to_every_member(
    transactional_db, account, root_actor, running_worker
):
    identity_services.create_group(account=account, group_name="staff", actor=root_actor)
    names = [f"user{i:03d}" for i in range(60)]
    for name in names:
        identity_services.create_user(account=account, user_name=name, actor=root_actor)
        identity_services.add_user_to_group(
            account=account, group_name="staff", user_name=name, actor=root_actor
        )
    policy_services.put_group_policy(
        account=account,
        group_name="staff",
        policy_name="read",
        policy_document=ALLOW_GET,
        actor=root_actor,
    )
    change = last_change()
    wait_for(lambda: propagation.wait_until_propagated(change))

    for user in User.objects.filter(name__in=names):
        result = access.decide_for_principal(user.arn, "s3:GetObject", "*")
        assert (result.source, result.decision.decision) == ("store", "allowed")
        assert result.sequence >= change


def test_it_revokes_a_deactivated_access_key_on_the_priority_queue(
    transactional_db, account, root_actor, running_worker
):
    identity_services.create_user(account=account, user_name="carol", actor=root_actor)
    key = identity_services.create_access_key(
        account=account, user_name="carol", actor=root_actor
    ).access_key
    identity_services.update_access_key(
        account=account,
        access_key_id=key.access_key_id,
        status="Inactive",
        user_name="carol",
        actor=root_actor,
    )
    change = ChangeEvent.objects.filter(entity_id=key.access_key_id).order_by("-id").first()
    assert change.priority
    wait_for(lambda: propagation.wait_until_propagated(change.pk))

    revoked = store.read(unique_id=key.access_key_id)
    assert revoked is not None
    assert revoked.tomb
    assert revoked.stamp >= change.pk


def test_it_writes_a_tombstone_for_a_deleted_user(
    transactional_db, account, root_actor, running_worker
):
    dave = identity_services.create_user(account=account, user_name="dave", actor=root_actor)
    wait_for(lambda: propagation.wait_until_propagated(last_change()))
    assert store.read(arn=dave.arn) is not None

    identity_services.delete_user(account=account, user_name="dave", actor=root_actor)
    wait_for(lambda: propagation.wait_until_propagated(last_change()))

    tomb = store.read(unique_id=dave.unique_id)
    assert tomb is not None
    assert tomb.tomb
    assert store.read(arn=dave.arn) is None
    with pytest.raises(access.UnknownPrincipal):
        access.decide_for_principal(dave.arn, "s3:GetObject", "*")


def test_it_sweeps_a_change_whose_message_was_lost(
    transactional_db, account, root_actor, running_worker
):
    erin = identity_services.create_user(account=account, user_name="erin", actor=root_actor)
    wait_for(lambda: propagation.wait_until_propagated(last_change()))
    # A change committed with no message queued (as when the broker was down at commit).
    InlinePolicy.objects.create(user=erin, name="read", document=ALLOW_GET)
    lost = ChangeEvent.objects.create(
        kind=Kind.USER, account_id=account.id, entity_id=erin.unique_id
    )

    assert propagation.wait_until_propagated(lost.pk, timeout_s=15)
    result = access.decide_for_principal(erin.arn, "s3:GetObject", "*")
    assert (result.source, result.decision.decision) == ("store", "allowed")


def test_it_parks_a_change_that_keeps_failing_and_still_converges_the_others(
    transactional_db, account, root_actor, running_worker
):
    identity_services.create_group(account=account, group_name="team", actor=root_actor)
    for name in ("frank", "grace"):
        identity_services.create_user(account=account, user_name=name, actor=root_actor)
        identity_services.add_user_to_group(
            account=account, group_name="team", user_name=name, actor=root_actor
        )
    policy_services.put_user_policy(
        account=account,
        user_name="frank",
        policy_name="own",
        policy_document=ALLOW_PUT,
        actor=root_actor,
    )
    wait_for(lambda: propagation.wait_until_propagated(last_change()))
    # Frank's stored document is corrupted behind the services' back; then a group change
    # reaches both members.
    InlinePolicy.objects.filter(user__name="frank").update(document='{"Version": "2012-10-17"')
    policy_services.put_group_policy(
        account=account,
        group_name="team",
        policy_name="read",
        policy_document=ALLOW_GET,
        actor=root_actor,
    )
    change = ChangeEvent.objects.filter(kind=Kind.GROUP).order_by("-id").first()

    parked = wait_for(
        lambda: ChangeEvent.objects.filter(pk=change.pk, parked_at__isnull=False).first(), 40
    )

    assert parked.attempts == propagation.MAX_ATTEMPTS
    assert parked.processed_at is None
    frank, grace = User.objects.get(name="frank"), User.objects.get(name="grace")
    assert frank.unique_id in parked.last_error
    info = propagation.status()
    assert [p["id"] for p in info["parked"]] == [change.pk]
    assert info["last_error"]["change_id"] == change.pk
    # Grace converged; Frank's decisions come from the database and deny (fail closed).
    grace_result = access.decide_for_principal(grace.arn, "s3:GetObject", "*")
    assert (grace_result.source, grace_result.decision.decision) == ("store", "allowed")
    frank_result = access.decide_for_principal(frank.arn, "s3:GetObject", "*")
    assert frank_result.decision.decision == "explicitDeny"
    assert frank_result.error


def test_it_reports_status_and_rebuilds_from_the_command_line(
    transactional_db, account, root_actor, running_worker, capsys
):
    identity_services.create_user(account=account, user_name="heidi", actor=root_actor)
    wait_for(lambda: propagation.wait_until_propagated(last_change()))
    wait_for(lambda: store.get_float(f"worker:{running_worker.hostname}"))

    call_command("propagation_status")
    out = capsys.readouterr().out
    assert f"current change sequence: {last_change()}" in out
    assert "oldest unpropagated change: none" in out
    assert f"({running_worker.hostname})" in out

    store.flush_namespace()
    call_command("propagation_rebuild")
    out = capsys.readouterr().out
    heidi = User.objects.get(name="heidi")
    assert store.read(unique_id=heidi.unique_id) is not None
    assert "published" in out


def test_it_reads_a_chunk_of_users_in_a_fixed_number_of_queries(
    account, root_actor, django_assert_max_num_queries
):
    policy = policy_services.create_policy(
        account=account, policy_name="put", policy_document=ALLOW_PUT, actor=root_actor
    )
    identity_services.create_group(account=account, group_name="crowd", actor=root_actor)
    policy_services.attach_group_policy(
        account=account, group_name="crowd", policy_arn=policy.arn, actor=root_actor
    )
    for i in range(30):
        identity_services.create_user(account=account, user_name=f"c{i}", actor=root_actor)
        identity_services.add_user_to_group(
            account=account, group_name="crowd", user_name=f"c{i}", actor=root_actor
        )
        policy_services.put_user_policy(
            account=account,
            user_name=f"c{i}",
            policy_name="own",
            policy_document=ALLOW_GET,
            actor=root_actor,
        )
    pks = list(User.objects.filter(name__startswith="c").values_list("pk", flat=True))

    with django_assert_max_num_queries(7):
        entries, failures = propagation.user_entries(pks, stamp=1)

    assert (len(entries), failures) == (30, {})
    assert all(policy.unique_id in entry.deps for entry in entries)
