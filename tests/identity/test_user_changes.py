"""Renaming users, tags, the user quota, the account alias, and rollback of failed changes."""

from __future__ import annotations

import pytest

from audit import services as audit_services
from audit.models import AuditEvent
from identity import quotas, services
from identity.errors import (
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    ValidationError,
)
from identity.models import Account, User
from policies.models import ChangeEvent

TAG_KEY_PATTERN = r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+"


def test_it_renames_and_moves_a_user_keeping_its_id(account, root_actor):
    user = services.create_user(account=account, user_name="alice", actor=root_actor)
    ChangeEvent.objects.all().delete()

    renamed = services.update_user(
        account=account,
        user_name="ALICE",
        new_user_name="Alice.Smith",
        new_path="/staff/",
        actor=root_actor,
    )

    assert renamed.unique_id == user.unique_id
    assert renamed.arn == "arn:aws:iam::111111111111:user/staff/Alice.Smith"
    event = AuditEvent.objects.get(action="iam:UpdateUser")
    assert event.before["Arn"] == "arn:aws:iam::111111111111:user/alice"
    assert event.after["Arn"] == renamed.arn
    assert ChangeEvent.objects.filter(kind="user", entity_id=user.unique_id).count() == 1


def test_it_allows_a_rename_that_changes_only_case(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)

    user = services.update_user(
        account=account, user_name="alice", new_user_name="Alice", actor=root_actor
    )

    assert user.name == "Alice"


def test_it_refuses_a_rename_onto_another_user(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    services.create_user(account=account, user_name="bob", actor=root_actor)

    with pytest.raises(EntityAlreadyExists) as excinfo:
        services.update_user(
            account=account, user_name="alice", new_user_name="BOB", actor=root_actor
        )

    assert excinfo.value.message == "User with name BOB already exists."
    assert User.objects.filter(name="alice").exists()


@pytest.mark.parametrize("path", ["engineering", "/engineering", "//", "/a b/", "/" + "a" * 511])
def test_it_rejects_invalid_paths(account, root_actor, path):
    with pytest.raises(ValidationError) as excinfo:
        services.create_user(account=account, user_name="alice", path=path, actor=root_actor)

    assert f"Value '{path}' at 'path' failed to satisfy constraint" in excinfo.value.message


def test_it_accepts_a_path_of_512_characters(account, root_actor):
    path = "/" + "a" * 510 + "/"

    user = services.create_user(account=account, user_name="alice", path=path, actor=root_actor)

    assert user.arn == f"arn:aws:iam::111111111111:user{path}alice"


def test_it_enforces_the_users_per_account_quota(account, root_actor, monkeypatch):
    monkeypatch.setattr(quotas, "USERS_PER_ACCOUNT", 3)
    for i in range(3):
        services.create_user(account=account, user_name=f"u{i}", actor=root_actor)

    with pytest.raises(LimitExceeded) as excinfo:
        services.create_user(account=account, user_name="u3", actor=root_actor)

    assert excinfo.value.message == "Cannot exceed quota for UsersPerAccount: 3"


def test_it_tags_a_user_replacing_values_case_insensitively(account, root_actor):
    services.create_user(
        account=account,
        user_name="alice",
        tags=[{"Key": "Team", "Value": "data"}],
        actor=root_actor,
    )

    user = services.tag_user(
        account=account,
        user_name="alice",
        tags=[{"Key": "team", "Value": "platform"}, {"Key": "cost-center", "Value": "42"}],
        actor=root_actor,
    )

    assert user.tags == [
        {"Key": "team", "Value": "platform"},
        {"Key": "cost-center", "Value": "42"},
    ]
    event = AuditEvent.objects.get(action="iam:TagUser")
    assert event.before == {"Tags": [{"Key": "Team", "Value": "data"}]}

    user = services.untag_user(
        account=account, user_name="alice", tag_keys=["TEAM", "absent"], actor=root_actor
    )
    assert user.tags == [{"Key": "cost-center", "Value": "42"}]


def test_it_allows_fifty_tags_and_refuses_the_fifty_first(account, root_actor):
    fifty = [{"Key": f"k{i}", "Value": ""} for i in range(50)]
    services.create_user(account=account, user_name="alice", tags=fifty, actor=root_actor)

    with pytest.raises(LimitExceeded) as excinfo:
        services.tag_user(
            account=account, user_name="alice", tags=[{"Key": "k50", "Value": ""}], actor=root_actor
        )

    assert excinfo.value.message == "The number of tags has exceeded the limit of 50."
    assert len(User.objects.get(name="alice").tags) == 50


@pytest.mark.parametrize(
    ("tags", "error", "message"),
    [
        (
            [{"Key": "aws:team", "Value": "x"}],
            InvalidInput,
            "User-defined tag keys can't start with 'aws:'.",
        ),
        (
            [{"Key": "Team", "Value": "a"}, {"Key": "team", "Value": "b"}],
            InvalidInput,
            "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
        ),
        (
            [{"Key": "k" * 129, "Value": "x"}],
            ValidationError,
            f"1 validation error detected: Value '{'k' * 129}' at 'tags.member.key' failed to "
            f"satisfy constraint: Member must satisfy regular expression pattern: "
            f"{TAG_KEY_PATTERN}",
        ),
        (
            [{"Key": "", "Value": "x"}],
            ValidationError,
            None,
        ),
        (
            [{"Key": "k", "Value": "v" * 257}],
            ValidationError,
            None,
        ),
        (
            [{"Key": "k", "Value": "semi;colon"}],
            ValidationError,
            None,
        ),
    ],
)
def test_it_applies_aws_tag_rules(account, root_actor, tags, error, message):
    with pytest.raises(error) as excinfo:
        services.create_user(account=account, user_name="alice", tags=tags, actor=root_actor)

    if message is not None:
        assert excinfo.value.message == message
    assert not User.objects.filter(name="alice").exists()


def test_it_accepts_tag_keys_of_128_and_values_of_256(account, root_actor):
    user = services.create_user(
        account=account,
        user_name="alice",
        tags=[{"Key": "k" * 128, "Value": "v" * 256}],
        actor=root_actor,
    )

    assert user.tags[0]["Value"] == "v" * 256


def test_it_sets_replaces_and_deletes_the_account_alias(account, other_account, root_actor):
    services.create_account_alias(account=account, account_alias="alice-co", actor=root_actor)
    services.update_account_alias(account=account, account_alias="alice-corp", actor=root_actor)

    assert Account.objects.get(pk=account.pk).alias == "alice-corp"
    with pytest.raises(EntityAlreadyExists) as excinfo:
        services.create_account_alias(
            account=other_account, account_alias="alice-corp", actor=root_actor
        )
    assert excinfo.value.message == "The account alias alice-corp already exists."

    with pytest.raises(NoSuchEntity):
        services.delete_account_alias(account=account, account_alias="alice-co", actor=root_actor)
    services.delete_account_alias(account=account, account_alias="alice-corp", actor=root_actor)

    assert Account.objects.get(pk=account.pk).alias is None
    events = AuditEvent.objects.filter(action__endswith="AccountAlias").order_by("id")
    assert [e.after["AccountAlias"] for e in events] == ["alice-co", "alice-corp", None]


@pytest.mark.parametrize(
    "alias", ["ab", "a" * 64, "Alice", "123456789012", "-alice", "alice-", "al--ice", "al_ice"]
)
def test_it_rejects_aliases_outside_aws_rules(account, root_actor, alias):
    with pytest.raises(ValidationError):
        services.create_account_alias(account=account, account_alias=alias, actor=root_actor)

    assert Account.objects.get(pk=account.pk).alias is None


def test_it_leaves_no_partial_rows_and_no_audit_event_when_a_service_fails(
    account, root_actor, monkeypatch
):
    """A failure after the row is written (here: the audit write itself) rolls back the row,
    its outbox entry and any event: a change and its record commit or fail together."""
    events_before = AuditEvent.objects.count()
    changes_before = ChangeEvent.objects.count()

    def broken_record_event(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "record_event", broken_record_event)
    with pytest.raises(RuntimeError):
        services.create_user(account=account, user_name="alice", actor=root_actor)
    with pytest.raises(RuntimeError):
        services.create_group(account=account, group_name="devs", actor=root_actor)

    monkeypatch.setattr(services, "record_event", audit_services.record_event)
    assert not User.objects.filter(name="alice").exists()
    assert not account.groups.exists()
    assert AuditEvent.objects.count() == events_before
    assert ChangeEvent.objects.count() == changes_before


def test_it_rolls_back_a_quota_failure_inside_the_transaction(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    for i in range(10):
        services.create_group(account=account, group_name=f"g{i}", actor=root_actor)
        services.add_user_to_group(
            account=account, group_name=f"g{i}", user_name="alice", actor=root_actor
        )
    services.create_group(account=account, group_name="g10", actor=root_actor)
    events_before = AuditEvent.objects.count()

    with pytest.raises(LimitExceeded):
        services.add_user_to_group(
            account=account, group_name="g10", user_name="alice", actor=root_actor
        )

    assert AuditEvent.objects.count() == events_before
    assert not account.groups.get(name="g10").memberships.exists()
