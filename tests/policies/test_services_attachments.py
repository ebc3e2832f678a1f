"""Attaching managed policies and writing inline policies: quotas, counts, sizes, outbox."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditEvent
from identity import services as identity_services
from identity.errors import LimitExceeded, MalformedPolicyDocument, NoSuchEntity
from identity.quotas import policy_size
from policies import services
from policies.models import ChangeEvent, InlinePolicy, ManagedPolicy, UserPolicyAttachment
from tests.identity.test_roles import TRUST

READ_ONLY = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"


def document(action: str = "s3:GetObject", resources: object = "*") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": resources}],
        }
    )


@pytest.fixture
def entities(account, root_actor) -> None:
    identity_services.create_user(account=account, user_name="alice", actor=root_actor)
    identity_services.create_group(account=account, group_name="devs", actor=root_actor)
    identity_services.create_role(
        account=account, role_name="deployer", assume_role_policy_document=TRUST, actor=root_actor
    )


def policies(account, actor, count: int) -> list[str]:
    return [
        services.create_policy(
            account=account, policy_name=f"p{i}", policy_document=document(), actor=actor
        ).arn
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("attach", "name_kw", "name", "quota"),
    [
        (services.attach_user_policy, "user_name", "alice", "PoliciesPerUser"),
        (services.attach_group_policy, "group_name", "devs", "PoliciesPerGroup"),
        (services.attach_role_policy, "role_name", "deployer", "PoliciesPerRole"),
    ],
)
def test_it_attaches_at_most_ten_managed_policies(
    account, root_actor, entities, attach, name_kw, name, quota
):
    arns = policies(account, root_actor, 11)
    for arn in arns[:10]:
        attach(account=account, policy_arn=arn, actor=root_actor, **{name_kw: name})

    with pytest.raises(LimitExceeded) as excinfo:
        attach(account=account, policy_arn=arns[10], actor=root_actor, **{name_kw: name})

    assert excinfo.value.message == f"Cannot exceed quota for {quota}: 10"
    assert ManagedPolicy.objects.get(name="p0").attachment_count == 1
    assert ManagedPolicy.objects.get(name="p10").attachment_count == 0


def test_it_keeps_the_attachment_count_in_step(account, root_actor, entities):
    (arn,) = policies(account, root_actor, 1)
    services.attach_user_policy(
        account=account, user_name="alice", policy_arn=arn, actor=root_actor
    )
    services.attach_user_policy(
        account=account, user_name="alice", policy_arn=arn, actor=root_actor
    )
    services.attach_group_policy(
        account=account, group_name="devs", policy_arn=arn, actor=root_actor
    )
    services.attach_role_policy(
        account=account, role_name="deployer", policy_arn=arn, actor=root_actor
    )
    assert ManagedPolicy.objects.get(name="p0").attachment_count == 3

    services.detach_group_policy(
        account=account, group_name="devs", policy_arn=arn, actor=root_actor
    )

    assert ManagedPolicy.objects.get(name="p0").attachment_count == 2
    assert UserPolicyAttachment.objects.count() == 1


def test_it_reports_an_unknown_policy_arn_as_aws_does(account, root_actor, entities):
    arn = "arn:aws:iam::111111111111:policy/Nope"

    with pytest.raises(NoSuchEntity) as excinfo:
        services.attach_user_policy(
            account=account, user_name="alice", policy_arn=arn, actor=root_actor
        )

    assert excinfo.value.message == f"Policy {arn} does not exist or is not attachable."


def test_it_reports_detaching_a_policy_that_is_not_attached(account, root_actor, entities):
    with pytest.raises(NoSuchEntity) as excinfo:
        services.detach_user_policy(
            account=account, user_name="alice", policy_arn=READ_ONLY, actor=root_actor
        )

    assert excinfo.value.message == f"Policy {READ_ONLY} was not found."


def test_it_cannot_attach_a_policy_of_another_account(account, other_account, root_actor):
    identity_services.create_user(account=other_account, user_name="bob", actor=root_actor)
    (arn,) = policies(account, root_actor, 1)

    with pytest.raises(NoSuchEntity):
        services.attach_user_policy(
            account=other_account, user_name="bob", policy_arn=arn, actor=root_actor
        )


def test_it_records_outbox_rows_and_audit_events_for_attachments(account, root_actor, entities):
    user = account.users.get(name="alice")
    ChangeEvent.objects.all().delete()

    services.attach_user_policy(
        account=account, user_name="alice", policy_arn=READ_ONLY, actor=root_actor
    )
    services.detach_user_policy(
        account=account, user_name="alice", policy_arn=READ_ONLY, actor=root_actor
    )

    changes = list(ChangeEvent.objects.order_by("id").values_list("kind", "entity_id", "priority"))
    assert changes == [("user", user.unique_id, False), ("user", user.unique_id, True)]
    attach = AuditEvent.objects.get(action="iam:AttachUserPolicy")
    assert attach.resource_arn == user.arn
    assert attach.request_parameters == {"UserName": "alice", "PolicyArn": READ_ONLY}


@pytest.mark.parametrize(
    ("put", "name_kw", "name", "label", "limit"),
    [
        (services.put_user_policy, "user_name", "alice", "user", 2048),
        (services.put_group_policy, "group_name", "devs", "group", 5120),
        (services.put_role_policy, "role_name", "deployer", "role", 10240),
    ],
)
def test_it_limits_the_total_size_of_an_entitys_inline_policies(
    account, root_actor, entities, put, name_kw, name, label, limit
):
    def sized(target: int) -> str:
        """A valid document of exactly ``target`` non-whitespace characters."""
        base = document(resources=["arn:aws:s3:::"])
        padded = document(resources=["arn:aws:s3:::" + "x" * (target - policy_size(base))])
        assert policy_size(padded) == target
        return padded

    half = sized(limit // 2)
    put(
        account=account,
        policy_name="one",
        policy_document=half,
        actor=root_actor,
        **{name_kw: name},
    )
    put(
        account=account,
        policy_name="two",
        policy_document=half,
        actor=root_actor,
        **{name_kw: name},
    )

    with pytest.raises(LimitExceeded) as excinfo:
        put(
            account=account,
            policy_name="three",
            policy_document=sized(200),
            actor=root_actor,
            **{name_kw: name},
        )

    assert excinfo.value.message == (
        f"Maximum policy size of {limit} bytes exceeded for {label} {name}"
    )
    # Replacing a policy counts its new size, not old + new.
    put(
        account=account,
        policy_name="two",
        policy_document=sized(limit // 2 - 5),
        actor=root_actor,
        **{name_kw: name},
    )
    assert InlinePolicy.objects.count() == 2


def test_it_validates_inline_documents(account, root_actor, entities):
    with pytest.raises(MalformedPolicyDocument):
        services.put_user_policy(
            account=account,
            user_name="alice",
            policy_name="bad",
            policy_document='{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}',
            actor=root_actor,
        )

    assert not InlinePolicy.objects.exists()


def test_it_replaces_and_deletes_inline_policies_with_audit_and_outbox(
    account, root_actor, entities
):
    role = account.roles.get(name="deployer")
    services.put_role_policy(
        account=account,
        role_name="deployer",
        policy_name="p",
        policy_document=document(),
        actor=root_actor,
    )
    services.put_role_policy(
        account=account,
        role_name="deployer",
        policy_name="p",
        policy_document=document("s3:PutObject"),
        actor=root_actor,
    )
    events = list(AuditEvent.objects.filter(action="iam:PutRolePolicy").order_by("id"))
    assert events[0].before is None
    assert events[1].before["PolicyDocument"] == document()
    assert InlinePolicy.objects.get(role=role).document == document("s3:PutObject")

    services.delete_role_policy(
        account=account, role_name="deployer", policy_name="p", actor=root_actor
    )

    assert not InlinePolicy.objects.exists()
    assert ChangeEvent.objects.filter(kind="role", entity_id=role.unique_id, priority=True).exists()
    with pytest.raises(NoSuchEntity) as excinfo:
        services.delete_role_policy(
            account=account, role_name="deployer", policy_name="p", actor=root_actor
        )
    assert excinfo.value.message == "The role policy with name p cannot be found."


def test_it_refuses_to_delete_a_user_with_attached_or_inline_policies(
    account, root_actor, entities
):
    from identity.errors import DeleteConflict

    services.put_user_policy(
        account=account,
        user_name="alice",
        policy_name="p",
        policy_document=document(),
        actor=root_actor,
    )
    with pytest.raises(DeleteConflict):
        identity_services.delete_user(account=account, user_name="alice", actor=root_actor)
