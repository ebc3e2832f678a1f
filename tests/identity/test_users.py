"""Users: names, ids, ARNs, quotas and conflicts, as IAM documents them."""

from __future__ import annotations

import re

import pytest

from audit.models import AuditEvent
from identity import services
from identity.errors import DeleteConflict, EntityAlreadyExists, NoSuchEntity, ValidationError
from policies.models import ChangeEvent


def test_it_creates_a_user_with_an_aws_shaped_id_and_arn(account, root_actor):
    user = services.create_user(
        account=account, user_name="Alice", path="/engineering/", actor=root_actor
    )

    assert re.fullmatch(r"AIDA[A-Z2-7]{17}", user.unique_id)
    assert user.arn == "arn:aws:iam::111111111111:user/engineering/Alice"
    assert not user.has_login_profile


def test_it_refuses_a_name_that_differs_only_in_case(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)

    with pytest.raises(EntityAlreadyExists) as excinfo:
        services.create_user(account=account, user_name="Alice", actor=root_actor)

    assert excinfo.value.message == "User with name Alice already exists."


def test_it_allows_the_same_name_in_another_account(account, other_account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    services.create_user(account=other_account, user_name="alice", actor=root_actor)


@pytest.mark.parametrize(
    ("name", "constraint"),
    [
        ("", "Member must have length greater than or equal to 1"),
        ("a" * 65, "Member must have length less than or equal to 64"),
        ("bad name", r"Member must satisfy regular expression pattern: [\w+=,.@-]+"),
        ("bad/name", r"Member must satisfy regular expression pattern: [\w+=,.@-]+"),
    ],
)
def test_it_rejects_invalid_user_names_with_aws_message(account, root_actor, name, constraint):
    with pytest.raises(ValidationError) as excinfo:
        services.create_user(account=account, user_name=name, actor=root_actor)

    assert excinfo.value.message == (
        f"1 validation error detected: Value '{name}' at 'userName' failed to satisfy "
        f"constraint: {constraint}"
    )
    assert not account.users.filter(is_root=False).exists()


def test_it_records_the_change_and_its_outbox_row_in_the_same_transaction(account, root_actor):
    user = services.create_user(account=account, user_name="alice", actor=root_actor)

    event = AuditEvent.objects.get(action="iam:CreateUser")
    assert event.resource_arn == user.arn
    assert event.actor_arn == "arn:aws:iam::111111111111:root"
    assert event.source_ip == "192.0.2.10"
    assert event.after["UserId"] == user.unique_id
    assert ChangeEvent.objects.filter(kind="user", entity_id=user.unique_id).count() == 1


def test_it_deletes_a_user_and_reports_unknown_users(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)

    services.delete_user(account=account, user_name="ALICE", actor=root_actor)

    with pytest.raises(NoSuchEntity) as excinfo:
        services.delete_user(account=account, user_name="alice", actor=root_actor)
    assert excinfo.value.message == "The user with name alice cannot be found."


def test_it_refuses_to_delete_a_user_with_a_password(account, root_actor):
    user = services.create_user(account=account, user_name="alice", actor=root_actor)
    user.set_password("Correct-horse-9")
    user.save(update_fields=["password"])

    with pytest.raises(DeleteConflict):
        services.delete_user(account=account, user_name="alice", actor=root_actor)
