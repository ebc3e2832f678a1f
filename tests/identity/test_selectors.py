"""Readers: IAM-style pagination, path prefixes, account scoping, the account summary and the
authorization details."""

from __future__ import annotations

import json

import pytest

from identity import selectors, services
from identity.errors import InvalidInput, NoSuchEntity, ValidationError
from policies import selectors as policy_selectors
from policies import services as policy_services
from tests.identity.test_roles import TRUST

READ_ONLY = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"
DOCUMENT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
)


def walk(reader, **kwargs) -> list[list[str]]:
    """Every page's names, following markers to the end."""
    pages, marker = [], None
    while True:
        page = reader(marker=marker, **kwargs)
        pages.append([item.name for item in page.items])
        if not page.is_truncated:
            assert page.marker is None
            return pages
        marker = page.marker


def test_it_pages_users_by_name_with_opaque_markers(account, other_account, root_actor):
    for name in ["carol", "Alice", "bob", "dave", "erin"]:
        services.create_user(account=account, user_name=name, actor=root_actor)
    services.create_user(account=other_account, user_name="zed", actor=root_actor)

    pages = walk(selectors.list_users, account=account, max_items=2)

    assert pages == [["Alice", "bob"], ["carol", "dave"], ["erin"]]


def test_it_does_not_skip_or_repeat_when_a_row_is_deleted_between_pages(account, root_actor):
    for name in ["a", "b", "c", "d"]:
        services.create_user(account=account, user_name=name, actor=root_actor)
    first = selectors.list_users(account=account, max_items=2)
    services.delete_user(account=account, user_name="b", actor=root_actor)

    second = selectors.list_users(account=account, max_items=2, marker=first.marker)

    assert [u.name for u in second.items] == ["c", "d"]
    assert not second.is_truncated


def test_it_filters_by_path_prefix(account, root_actor):
    services.create_user(account=account, user_name="a", path="/eng/backend/", actor=root_actor)
    services.create_user(account=account, user_name="b", path="/eng/", actor=root_actor)
    services.create_user(account=account, user_name="c", path="/sales/", actor=root_actor)

    page = selectors.list_users(account=account, path_prefix="/eng/")

    assert [u.name for u in page.items] == ["a", "b"]


@pytest.mark.parametrize(
    ("max_items", "bound"),
    [(0, "greater than or equal to 1"), (1001, "less than or equal to 1000")],
)
def test_it_validates_max_items(account, max_items, bound):
    with pytest.raises(ValidationError) as excinfo:
        selectors.list_users(account=account, max_items=max_items)

    assert excinfo.value.message == (
        f"1 validation error detected: Value '{max_items}' at 'maxItems' failed to satisfy "
        f"constraint: Member must have value {bound}"
    )


def test_it_rejects_a_forged_marker(account):
    with pytest.raises(InvalidInput):
        selectors.list_users(account=account, marker="not-a-marker!")


def test_it_lists_groups_members_and_memberships(account, root_actor):
    for name in ["alice", "bob"]:
        services.create_user(account=account, user_name=name, actor=root_actor)
    for group in ["devs", "admins"]:
        services.create_group(account=account, group_name=group, actor=root_actor)
        services.add_user_to_group(
            account=account, group_name=group, user_name="alice", actor=root_actor
        )
    services.add_user_to_group(
        account=account, group_name="devs", user_name="bob", actor=root_actor
    )

    group, members = selectors.get_group(account=account, group_name="DEVS")
    assert group.name == "devs"
    assert [u.name for u in members.items] == ["alice", "bob"]
    assert walk(selectors.list_groups_for_user, account=account, user_name="alice") == [
        ["admins", "devs"]
    ]
    assert [g.name for g in selectors.list_groups(account=account).items] == ["admins", "devs"]
    with pytest.raises(NoSuchEntity):
        selectors.list_groups_for_user(account=account, user_name="nobody")


def test_it_lists_roles_and_instance_profiles(account, root_actor):
    services.create_role(
        account=account, role_name="r1", assume_role_policy_document=TRUST, actor=root_actor
    )
    services.create_instance_profile(account=account, instance_profile_name="ip", actor=root_actor)
    services.add_role_to_instance_profile(
        account=account, instance_profile_name="ip", role_name="r1", actor=root_actor
    )

    assert [r.name for r in selectors.list_roles(account=account).items] == ["r1"]
    profiles = selectors.list_instance_profiles_for_role(account=account, role_name="r1")
    assert [(p.name, p.role.name) for p in profiles.items] == [("ip", "r1")]


def test_it_lists_access_keys_without_secrets(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    created = services.create_access_key(account=account, user_name="alice", actor=root_actor)

    page = selectors.list_access_keys(account=account, user_name="alice")

    assert [k.access_key_id for k in page.items] == [created.access_key.access_key_id]
    key = selectors.get_access_key_last_used(
        account=account, access_key_id=created.access_key.access_key_id
    )
    assert key.last_used_at is None


def test_it_lists_policies_by_scope_and_attachment(account, other_account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    policy_services.create_policy(
        account=account, policy_name="Mine", policy_document=DOCUMENT, actor=root_actor
    )
    policy_services.create_policy(
        account=other_account, policy_name="Theirs", policy_document=DOCUMENT, actor=root_actor
    )
    services.create_user(account=other_account, user_name="bob", actor=root_actor)
    policy_services.attach_user_policy(
        account=other_account,
        user_name="bob",
        policy_arn="arn:aws:iam::aws:policy/AdministratorAccess",
        actor=root_actor,
    )
    policy_services.attach_user_policy(
        account=account, user_name="alice", policy_arn=READ_ONLY, actor=root_actor
    )

    def names(**kwargs) -> list[str]:
        return [p.name for p in policy_selectors.list_policies(account=account, **kwargs).items]

    assert names(scope="Local") == ["Mine"]
    assert "AdministratorAccess" in names(scope="AWS")
    assert "Mine" not in names(scope="AWS")
    assert names(only_attached=True) == ["IAMReadOnlyAccess"]
    assert "Theirs" not in names()


def test_it_lists_attachments_inline_names_versions_and_entities(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    services.create_group(account=account, group_name="devs", actor=root_actor)
    policy = policy_services.create_policy(
        account=account, policy_name="Mine", policy_document=DOCUMENT, actor=root_actor
    )
    policy_services.create_policy_version(
        account=account, policy_arn=policy.arn, policy_document=DOCUMENT, actor=root_actor
    )
    policy_services.attach_user_policy(
        account=account, user_name="alice", policy_arn=policy.arn, actor=root_actor
    )
    policy_services.attach_group_policy(
        account=account, group_name="devs", policy_arn=policy.arn, actor=root_actor
    )
    for name in ["b", "a"]:
        policy_services.put_user_policy(
            account=account,
            user_name="alice",
            policy_name=name,
            policy_document=DOCUMENT,
            actor=root_actor,
        )

    attached = policy_selectors.list_attached_user_policies(account=account, user_name="alice")
    assert [p.arn for p in attached.items] == [policy.arn]
    assert policy_selectors.list_user_policies(account=account, user_name="alice").items == [
        "a",
        "b",
    ]
    versions = policy_selectors.list_policy_versions(account=account, policy_arn=policy.arn)
    assert [v.version_id for v in versions.items] == ["v2", "v1"]
    entities = policy_selectors.list_entities_for_policy(account=account, policy_arn=policy.arn)
    assert ([u.name for u in entities.users], [g.name for g in entities.groups]) == (
        ["alice"],
        ["devs"],
    )
    inline = policy_selectors.get_user_policy(account=account, user_name="alice", policy_name="a")
    assert inline.document == DOCUMENT


def test_it_summarises_the_account_with_iam_keys(account, other_account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    services.create_user(account=other_account, user_name="bob", actor=root_actor)
    services.create_group(account=account, group_name="devs", actor=root_actor)
    policy_services.create_policy(
        account=account, policy_name="Mine", policy_document=DOCUMENT, actor=root_actor
    )

    summary = selectors.get_account_summary(account=account)

    assert summary["Users"] == 1
    assert summary["UsersQuota"] == 5000
    assert summary["Groups"] == 1
    assert summary["GroupsQuota"] == 300
    assert summary["Roles"] == 0
    assert summary["RolesQuota"] == 1000
    assert summary["Policies"] == 1
    assert summary["PoliciesQuota"] == 1500
    assert summary["AttachedPoliciesPerUserQuota"] == 10
    assert summary["AccessKeysPerUserQuota"] == 2
    assert summary["VersionsPerPolicyQuota"] == 5
    assert summary["PolicySizeQuota"] == 6144
    assert summary["UserPolicySizeQuota"] == 2048
    assert summary["AccountMFAEnabled"] == 0
    assert summary["AccountAccessKeysPresent"] == 0
    assert summary["MFADevices"] == 0
    assert summary["MFADevicesInUse"] == 0


def test_it_details_the_accounts_authorization(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    services.create_group(account=account, group_name="devs", actor=root_actor)
    services.add_user_to_group(
        account=account, group_name="devs", user_name="alice", actor=root_actor
    )
    policy_services.attach_user_policy(
        account=account, user_name="alice", policy_arn=READ_ONLY, actor=root_actor
    )
    policy_services.put_user_policy(
        account=account,
        user_name="alice",
        policy_name="inline",
        policy_document=DOCUMENT,
        actor=root_actor,
    )

    details = selectors.get_account_authorization_details(account=account)

    (user,) = details["UserDetailList"]
    assert user["UserName"] == "alice"
    assert user["GroupList"] == ["devs"]
    assert user["AttachedManagedPolicies"] == [
        {"PolicyName": "IAMReadOnlyAccess", "PolicyArn": READ_ONLY}
    ]
    assert user["UserPolicyList"] == [{"PolicyName": "inline", "PolicyDocument": DOCUMENT}]
    assert [p["PolicyName"] for p in details["Policies"]] == ["IAMReadOnlyAccess"]
    assert details["Policies"][0]["AttachmentCount"] == 1
    only_groups = selectors.get_account_authorization_details(account=account, filters=["Group"])
    assert only_groups["UserDetailList"] == []
    assert [g["GroupName"] for g in only_groups["GroupDetailList"]] == ["devs"]


def test_it_accepts_max_items_as_the_query_api_sends_it(account, root_actor):
    for name in ["a", "b", "c"]:
        services.create_user(account=account, user_name=name, actor=root_actor)

    page = selectors.list_users(account=account, max_items="2")

    assert ([u.name for u in page.items], page.is_truncated) == (["a", "b"], True)
    with pytest.raises(ValidationError):
        selectors.list_users(account=account, max_items="many")
