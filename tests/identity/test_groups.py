"""Groups and memberships: names, ids, quotas, conflicts, as IAM documents them."""

from __future__ import annotations

import re

import pytest

from audit.models import AuditEvent
from identity import quotas, services
from identity.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    LimitExceeded,
    NoSuchEntity,
    ValidationError,
)
from identity.models import GroupMembership
from policies import services as policy_services
from policies.models import ChangeEvent

READ_ONLY = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"


def test_it_creates_a_group_with_an_aws_shaped_id_and_arn(account, root_actor):
    group = services.create_group(
        account=account, group_name="Admins", path="/ops/", actor=root_actor
    )

    assert re.fullmatch(r"AGPA[A-Z2-7]{17}", group.unique_id)
    assert group.arn == "arn:aws:iam::111111111111:group/ops/Admins"
    event = AuditEvent.objects.get(action="iam:CreateGroup")
    assert event.after["GroupId"] == group.unique_id


def test_it_refuses_a_group_name_that_differs_only_in_case(account, root_actor):
    services.create_group(account=account, group_name="admins", actor=root_actor)

    with pytest.raises(EntityAlreadyExists) as excinfo:
        services.create_group(account=account, group_name="ADMINS", actor=root_actor)

    assert excinfo.value.message == "Group with name ADMINS already exists."


def test_it_accepts_group_names_up_to_128_characters(account, root_actor):
    services.create_group(account=account, group_name="g" * 128, actor=root_actor)

    with pytest.raises(ValidationError) as excinfo:
        services.create_group(account=account, group_name="g" * 129, actor=root_actor)

    assert excinfo.value.message.endswith("Member must have length less than or equal to 128")


def test_it_enforces_the_groups_per_account_quota(account, root_actor, monkeypatch):
    monkeypatch.setattr(quotas, "GROUPS_PER_ACCOUNT", 3)
    for i in range(3):
        services.create_group(account=account, group_name=f"g{i}", actor=root_actor)

    with pytest.raises(LimitExceeded) as excinfo:
        services.create_group(account=account, group_name="g3", actor=root_actor)

    assert excinfo.value.message == "Cannot exceed quota for GroupsPerAccount: 3"


def test_it_renames_and_moves_a_group(account, root_actor):
    services.create_group(account=account, group_name="devs", actor=root_actor)
    services.create_group(account=account, group_name="ops", actor=root_actor)

    group = services.update_group(
        account=account,
        group_name="DEVS",
        new_group_name="Developers",
        new_path="/eng/",
        actor=root_actor,
    )

    assert group.arn == "arn:aws:iam::111111111111:group/eng/Developers"
    event = AuditEvent.objects.get(action="iam:UpdateGroup")
    assert event.before["GroupName"] == "devs"
    assert event.after["GroupName"] == "Developers"
    with pytest.raises(EntityAlreadyExists):
        services.update_group(
            account=account, group_name="Developers", new_group_name="OPS", actor=root_actor
        )


def test_it_adds_and_removes_members_with_outbox_rows(account, root_actor):
    user = services.create_user(account=account, user_name="alice", actor=root_actor)
    services.create_group(account=account, group_name="devs", actor=root_actor)
    ChangeEvent.objects.all().delete()

    services.add_user_to_group(
        account=account, group_name="devs", user_name="alice", actor=root_actor
    )
    services.add_user_to_group(
        account=account, group_name="devs", user_name="alice", actor=root_actor
    )

    assert GroupMembership.objects.filter(user=user).count() == 1
    assert ChangeEvent.objects.filter(kind="user", entity_id=user.unique_id).count() == 1

    services.remove_user_from_group(
        account=account, group_name="devs", user_name="alice", actor=root_actor
    )

    assert not GroupMembership.objects.filter(user=user).exists()
    removal = ChangeEvent.objects.filter(kind="user", entity_id=user.unique_id).last()
    assert removal.priority
    assert AuditEvent.objects.filter(action="iam:RemoveUserFromGroup").count() == 1


def test_it_limits_a_user_to_ten_groups(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    for i in range(11):
        services.create_group(account=account, group_name=f"g{i}", actor=root_actor)
    for i in range(10):
        services.add_user_to_group(
            account=account, group_name=f"g{i}", user_name="alice", actor=root_actor
        )

    with pytest.raises(LimitExceeded) as excinfo:
        services.add_user_to_group(
            account=account, group_name="g10", user_name="alice", actor=root_actor
        )

    assert excinfo.value.message == "Cannot exceed quota for GroupsPerUser: 10"


def test_it_refuses_to_delete_a_group_with_members_or_policies(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    services.create_group(account=account, group_name="devs", actor=root_actor)
    services.add_user_to_group(
        account=account, group_name="devs", user_name="alice", actor=root_actor
    )

    with pytest.raises(DeleteConflict) as excinfo:
        services.delete_group(account=account, group_name="devs", actor=root_actor)
    assert excinfo.value.message == "Cannot delete entity, must remove users from group first."

    services.remove_user_from_group(
        account=account, group_name="devs", user_name="alice", actor=root_actor
    )
    policy_services.attach_group_policy(
        account=account, group_name="devs", policy_arn=READ_ONLY, actor=root_actor
    )
    with pytest.raises(DeleteConflict) as excinfo:
        services.delete_group(account=account, group_name="devs", actor=root_actor)
    assert excinfo.value.message == "Cannot delete entity, must detach all policies first."

    policy_services.detach_group_policy(
        account=account, group_name="devs", policy_arn=READ_ONLY, actor=root_actor
    )
    policy_services.put_group_policy(
        account=account,
        group_name="devs",
        policy_name="inline",
        policy_document='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Action":"iam:GetUser","Resource":"*"}]}',
        actor=root_actor,
    )
    with pytest.raises(DeleteConflict) as excinfo:
        services.delete_group(account=account, group_name="devs", actor=root_actor)
    assert excinfo.value.message == "Cannot delete entity, must delete policies first."

    policy_services.delete_group_policy(
        account=account, group_name="devs", policy_name="inline", actor=root_actor
    )
    services.delete_group(account=account, group_name="devs", actor=root_actor)

    with pytest.raises(NoSuchEntity) as excinfo:
        services.delete_group(account=account, group_name="devs", actor=root_actor)
    assert excinfo.value.message == "The group with name devs cannot be found."
    assert AuditEvent.objects.get(action="iam:DeleteGroup").before["GroupName"] == "devs"


def test_it_refuses_to_delete_a_user_who_is_a_member(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    services.create_group(account=account, group_name="devs", actor=root_actor)
    services.add_user_to_group(
        account=account, group_name="devs", user_name="alice", actor=root_actor
    )

    with pytest.raises(DeleteConflict):
        services.delete_user(account=account, user_name="alice", actor=root_actor)
