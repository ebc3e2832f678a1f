"""Managed policies: ids, ARNs, document validation, sizes, versions, deletion rules, and the
AWS-managed policies no customer may change."""

from __future__ import annotations

import json
import re

import pytest

from audit.models import AuditEvent
from identity import quotas
from identity import services as identity_services
from identity.errors import (
    AccessDenied,
    DeleteConflict,
    EntityAlreadyExists,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    ValidationError,
)
from policies import services
from policies.models import ChangeEvent, ManagedPolicy, PolicyVersion


def document(action: str = "s3:GetObject", resource: str = "*") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
        }
    )


ARN = "arn:aws:iam::111111111111:policy/team/ReadBuckets"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


@pytest.fixture
def policy(account, root_actor) -> ManagedPolicy:
    return services.create_policy(
        account=account,
        policy_name="ReadBuckets",
        path="/team/",
        description="Read the buckets",
        policy_document=document(),
        tags=[{"Key": "team", "Value": "data"}],
        actor=root_actor,
    )


def test_it_creates_a_policy_with_an_aws_shaped_id_arn_and_v1(policy):
    assert re.fullmatch(r"ANPA[A-Z2-7]{17}", policy.unique_id)
    assert policy.arn == ARN
    assert policy.default_version_id == "v1"
    version = PolicyVersion.objects.get(policy=policy)
    assert (version.version_id, version.is_default) == ("v1", True)
    event = AuditEvent.objects.get(action="iam:CreatePolicy")
    assert event.after["Arn"] == ARN


def test_it_refuses_a_duplicate_name_case_insensitively(account, root_actor, policy):
    with pytest.raises(EntityAlreadyExists) as excinfo:
        services.create_policy(
            account=account,
            policy_name="readbuckets",
            policy_document=document(),
            actor=root_actor,
        )

    assert excinfo.value.message == (
        "A policy called readbuckets already exists. Duplicate names are not allowed."
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "Syntax errors in policy."),
        ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject"}]}', None),
    ],
)
def test_it_rejects_malformed_documents_with_aws_message(account, root_actor, text, message):
    with pytest.raises(MalformedPolicyDocument) as excinfo:
        services.create_policy(
            account=account, policy_name="Bad", policy_document=text, actor=root_actor
        )

    if message is not None:
        assert excinfo.value.message == message
    assert not ManagedPolicy.objects.filter(account=account).exists()
    assert not AuditEvent.objects.filter(action="iam:CreatePolicy").exists()


def test_it_limits_a_managed_policy_to_6144_non_whitespace_characters(account, root_actor):
    resources = [f"arn:aws:s3:::bucket-{i:05d}/*" for i in range(260)]
    big = document(resource=resources)  # type: ignore[arg-type]
    assert quotas.policy_size(big) > 6144

    with pytest.raises(LimitExceeded) as excinfo:
        services.create_policy(
            account=account, policy_name="Big", policy_document=big, actor=root_actor
        )

    assert excinfo.value.message == "Cannot exceed quota for PolicySize: 6144"
    fits = document(resource=resources[:150])  # type: ignore[arg-type]
    assert quotas.policy_size(fits) <= 6144
    services.create_policy(
        account=account,
        policy_name="Fits",
        policy_document=json.dumps(json.loads(fits), indent=12),
        actor=root_actor,
    )


def test_it_enforces_the_policies_per_account_quota(account, root_actor, monkeypatch):
    monkeypatch.setattr(quotas, "CUSTOMER_MANAGED_POLICIES_PER_ACCOUNT", 2)
    for name in ("a", "b"):
        services.create_policy(
            account=account, policy_name=name, policy_document=document(), actor=root_actor
        )

    with pytest.raises(LimitExceeded) as excinfo:
        services.create_policy(
            account=account, policy_name="c", policy_document=document(), actor=root_actor
        )

    assert excinfo.value.message == "Cannot exceed quota for PoliciesPerAccount: 2"


def test_it_keeps_five_versions_and_never_reuses_an_id(account, root_actor, policy):
    for _ in range(4):
        services.create_policy_version(
            account=account, policy_arn=ARN, policy_document=document(), actor=root_actor
        )
    with pytest.raises(LimitExceeded) as excinfo:
        services.create_policy_version(
            account=account, policy_arn=ARN, policy_document=document(), actor=root_actor
        )
    assert excinfo.value.message == (
        "A managed policy can have up to 5 versions. Before you create a new version, you "
        "must delete an existing version."
    )

    services.delete_policy_version(
        account=account, policy_arn=ARN, version_id="v5", actor=root_actor
    )
    version = services.create_policy_version(
        account=account,
        policy_arn=ARN,
        policy_document=document("s3:PutObject"),
        set_as_default=True,
        actor=root_actor,
    )

    assert version.version_id == "v6"
    policy.refresh_from_db()
    assert policy.default_version_id == "v6"
    assert list(
        PolicyVersion.objects.filter(policy=policy, is_default=True).values_list(
            "version_id", flat=True
        )
    ) == ["v6"]
    assert ChangeEvent.objects.filter(kind="policy", entity_id=policy.unique_id).exists()


def test_it_refuses_to_delete_the_default_version(account, root_actor, policy):
    with pytest.raises(DeleteConflict) as excinfo:
        services.delete_policy_version(
            account=account, policy_arn=ARN, version_id="v1", actor=root_actor
        )

    assert excinfo.value.message == "Cannot delete the default version of a policy."


def test_it_sets_the_default_version_and_propagates(account, root_actor, policy):
    services.create_policy_version(
        account=account, policy_arn=ARN, policy_document=document("s3:*"), actor=root_actor
    )
    ChangeEvent.objects.all().delete()

    services.set_default_policy_version(
        account=account, policy_arn=ARN, version_id="v2", actor=root_actor
    )

    assert PolicyVersion.objects.get(policy=policy, is_default=True).version_id == "v2"
    assert ChangeEvent.objects.get().kind == "policy"
    event = AuditEvent.objects.get(action="iam:SetDefaultPolicyVersion")
    assert (event.before["DefaultVersionId"], event.after["DefaultVersionId"]) == ("v1", "v2")
    with pytest.raises(NoSuchEntity) as excinfo:
        services.set_default_policy_version(
            account=account, policy_arn=ARN, version_id="v9", actor=root_actor
        )
    assert excinfo.value.message == f"Policy {ARN} version v9 does not exist or is not attachable."


def test_it_refuses_to_delete_an_attached_policy_or_one_with_versions(account, root_actor, policy):
    identity_services.create_user(account=account, user_name="alice", actor=root_actor)
    services.attach_user_policy(
        account=account, user_name="alice", policy_arn=ARN, actor=root_actor
    )
    with pytest.raises(DeleteConflict) as excinfo:
        services.delete_policy(account=account, policy_arn=ARN, actor=root_actor)
    assert excinfo.value.message == "Cannot delete a policy attached to entities."
    services.detach_user_policy(
        account=account, user_name="alice", policy_arn=ARN, actor=root_actor
    )

    identity_services.put_user_permissions_boundary(
        account=account, user_name="alice", permissions_boundary=ARN, actor=root_actor
    )
    with pytest.raises(DeleteConflict):
        services.delete_policy(account=account, policy_arn=ARN, actor=root_actor)
    identity_services.delete_user_permissions_boundary(
        account=account, user_name="alice", actor=root_actor
    )

    services.create_policy_version(
        account=account, policy_arn=ARN, policy_document=document(), actor=root_actor
    )
    with pytest.raises(DeleteConflict) as excinfo:
        services.delete_policy(account=account, policy_arn=ARN, actor=root_actor)
    assert excinfo.value.message.startswith("This policy has more than one version.")
    services.delete_policy_version(
        account=account, policy_arn=ARN, version_id="v2", actor=root_actor
    )

    services.delete_policy(account=account, policy_arn=ARN, actor=root_actor)

    assert not ManagedPolicy.objects.filter(account=account).exists()
    assert not PolicyVersion.objects.filter(policy_id=policy.pk).exists()
    assert AuditEvent.objects.get(action="iam:DeletePolicy").before["Arn"] == ARN


@pytest.mark.parametrize(
    "call",
    [
        lambda a, actor: services.delete_policy(account=a, policy_arn=ADMIN, actor=actor),
        lambda a, actor: services.create_policy_version(
            account=a, policy_arn=ADMIN, policy_document=document(), actor=actor
        ),
        lambda a, actor: services.set_default_policy_version(
            account=a, policy_arn=ADMIN, version_id="v1", actor=actor
        ),
        lambda a, actor: services.tag_policy(
            account=a, policy_arn=ADMIN, tags=[{"Key": "k", "Value": "v"}], actor=actor
        ),
    ],
)
def test_it_refuses_to_modify_aws_managed_policies(account, root_actor, call):
    with pytest.raises(AccessDenied) as excinfo:
        call(account, root_actor)

    assert "on resource: policy arn:aws:iam::aws:policy/AdministratorAccess" in (
        excinfo.value.message
    )
    assert ManagedPolicy.objects.get(name="AdministratorAccess").versions.count() == 1


def test_it_does_not_show_one_account_the_policies_of_another(
    account, other_account, root_actor, policy
):
    with pytest.raises(NoSuchEntity):
        services.delete_policy(account=other_account, policy_arn=ARN, actor=root_actor)


def test_it_tags_and_untags_a_policy(account, root_actor, policy):
    services.tag_policy(
        account=account,
        policy_arn=ARN,
        tags=[{"Key": "TEAM", "Value": "platform"}, {"Key": "cost", "Value": "1"}],
        actor=root_actor,
    )
    policy = services.untag_policy(
        account=account, policy_arn=ARN, tag_keys=["cost"], actor=root_actor
    )

    assert policy.tags == [{"Key": "TEAM", "Value": "platform"}]


def test_it_refuses_an_untag_key_over_128_characters_and_keeps_the_tags(
    account, root_actor, policy
):
    services.tag_policy(
        account=account, policy_arn=ARN, tags=[{"Key": "team", "Value": "x"}], actor=root_actor
    )
    key = "k" * 129

    with pytest.raises(ValidationError) as excinfo:
        services.untag_policy(account=account, policy_arn=ARN, tag_keys=[key], actor=root_actor)

    assert excinfo.value.message == (
        f"1 validation error detected: Value '{key}' at 'tagKeys.member' failed to satisfy "
        "constraint: Member must have length less than or equal to 128"
    )
    assert ManagedPolicy.objects.get(name="ReadBuckets").tags == [{"Key": "team", "Value": "x"}]
