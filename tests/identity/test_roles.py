"""Roles and instance profiles: trust policies, session durations, boundaries, conflicts."""

from __future__ import annotations

import json
import re

import pytest

from audit.models import AuditEvent
from identity import quotas, services
from identity.errors import (
    DeleteConflict,
    EntityAlreadyExists,
    LimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    ValidationError,
)
from identity.models import InstanceProfile, Role
from policies import services as policy_services
from policies.models import ChangeEvent, ManagedPolicy

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
READ_ONLY = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"


def make_role(account, actor, name="deployer", **kwargs):
    return services.create_role(
        account=account, role_name=name, assume_role_policy_document=TRUST, actor=actor, **kwargs
    )


def test_it_creates_a_role_with_an_aws_shaped_id_arn_and_defaults(account, root_actor):
    role = make_role(account, root_actor, path="/ci/", description="Deploys things")

    assert re.fullmatch(r"AROA[A-Z2-7]{17}", role.unique_id)
    assert role.arn == "arn:aws:iam::111111111111:role/ci/deployer"
    assert role.max_session_duration == 3600
    event = AuditEvent.objects.get(action="iam:CreateRole")
    assert event.after["Description"] == "Deploys things"
    assert ChangeEvent.objects.filter(kind="role", entity_id=role.unique_id).exists()


def test_it_refuses_a_role_name_that_differs_only_in_case(account, root_actor):
    make_role(account, root_actor, name="Deployer")

    with pytest.raises(EntityAlreadyExists) as excinfo:
        make_role(account, root_actor, name="deployer")

    assert excinfo.value.message == "Role with name deployer already exists."


def test_it_rejects_a_trust_policy_the_engine_rejects_with_aws_message(account, root_actor):
    with pytest.raises(MalformedPolicyDocument) as excinfo:
        services.create_role(
            account=account,
            role_name="r",
            assume_role_policy_document="{not json",
            actor=root_actor,
        )

    assert excinfo.value.message == "Syntax errors in policy."
    assert not Role.objects.exists()


def test_it_rejects_a_trust_policy_without_a_principal(account, root_actor):
    document = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
    )

    with pytest.raises(MalformedPolicyDocument):
        services.create_role(
            account=account, role_name="r", assume_role_policy_document=document, actor=root_actor
        )


def test_it_limits_the_trust_policy_to_2048_non_whitespace_characters(account, root_actor):
    arns = [f"arn:aws:iam::111111111111:user/u{i:04d}" for i in range(60)]
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": arns}, "Action": "sts:AssumeRole"}
            ],
        },
        indent=8,
    )
    assert quotas.policy_size(document) > 2048

    with pytest.raises(LimitExceeded) as excinfo:
        services.create_role(
            account=account, role_name="r", assume_role_policy_document=document, actor=root_actor
        )

    assert excinfo.value.message == "Cannot exceed quota for ACLSizePerRole: 2048"


def test_it_does_not_count_whitespace_in_the_trust_policy(account, root_actor):
    padded = TRUST.replace(",", ",\n" + " " * 900)
    assert len(padded) > 2048

    role = services.create_role(
        account=account, role_name="r", assume_role_policy_document=padded, actor=root_actor
    )

    assert role.assume_role_policy_document == padded


@pytest.mark.parametrize(
    ("seconds", "constraint"),
    [
        (3599, "Member must have value greater than or equal to 3600"),
        (43201, "Member must have value less than or equal to 43200"),
    ],
)
def test_it_bounds_the_max_session_duration(account, root_actor, seconds, constraint):
    with pytest.raises(ValidationError) as excinfo:
        make_role(account, root_actor, max_session_duration=seconds)

    assert excinfo.value.message == (
        f"1 validation error detected: Value '{seconds}' at 'maxSessionDuration' failed to "
        f"satisfy constraint: {constraint}"
    )


def test_it_accepts_the_extremes_of_the_session_duration(account, root_actor):
    assert make_role(account, root_actor, name="a", max_session_duration=3600)
    role = make_role(account, root_actor, name="b", max_session_duration=43200)

    assert role.max_session_duration == 43200


def test_it_enforces_the_roles_per_account_quota(account, root_actor, monkeypatch):
    monkeypatch.setattr(quotas, "ROLES_PER_ACCOUNT", 2)
    make_role(account, root_actor, name="a")
    make_role(account, root_actor, name="b")

    with pytest.raises(LimitExceeded) as excinfo:
        make_role(account, root_actor, name="c")

    assert excinfo.value.message == "Cannot exceed quota for RolesPerAccount: 2"


def test_it_updates_the_role_description_duration_and_trust(account, root_actor):
    make_role(account, root_actor)

    services.update_role(
        account=account,
        role_name="deployer",
        description="new",
        max_session_duration=7200,
        actor=root_actor,
    )
    services.update_role_description(
        account=account, role_name="deployer", description="newer", actor=root_actor
    )
    new_trust = TRUST.replace("root", "user/alice")
    role = services.update_assume_role_policy(
        account=account, role_name="deployer", policy_document=new_trust, actor=root_actor
    )

    assert (role.description, role.max_session_duration) == ("newer", 7200)
    assert role.assume_role_policy_document == new_trust
    event = AuditEvent.objects.get(action="iam:UpdateAssumeRolePolicy")
    assert event.before["AssumeRolePolicyDocument"] == TRUST
    assert event.after["AssumeRolePolicyDocument"] == new_trust
    with pytest.raises(MalformedPolicyDocument):
        services.update_assume_role_policy(
            account=account, role_name="deployer", policy_document="[]", actor=root_actor
        )


def test_it_rejects_a_description_over_1000_characters(account, root_actor):
    with pytest.raises(ValidationError):
        make_role(account, root_actor, description="d" * 1001)


def test_it_refuses_to_delete_a_role_with_policies_or_instance_profiles(account, root_actor):
    make_role(account, root_actor)
    policy_services.attach_role_policy(
        account=account, role_name="deployer", policy_arn=READ_ONLY, actor=root_actor
    )
    with pytest.raises(DeleteConflict) as excinfo:
        services.delete_role(account=account, role_name="deployer", actor=root_actor)
    assert excinfo.value.message == "Cannot delete entity, must detach all policies first."
    policy_services.detach_role_policy(
        account=account, role_name="deployer", policy_arn=READ_ONLY, actor=root_actor
    )

    services.create_instance_profile(account=account, instance_profile_name="web", actor=root_actor)
    services.add_role_to_instance_profile(
        account=account, instance_profile_name="web", role_name="deployer", actor=root_actor
    )
    with pytest.raises(DeleteConflict) as excinfo:
        services.delete_role(account=account, role_name="deployer", actor=root_actor)
    assert excinfo.value.message == (
        "Cannot delete entity, must remove roles from instance profile first."
    )
    services.remove_role_from_instance_profile(
        account=account, instance_profile_name="web", role_name="deployer", actor=root_actor
    )

    policy_services.put_role_policy(
        account=account,
        role_name="deployer",
        policy_name="p",
        policy_document='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Action":"s3:GetObject","Resource":"*"}]}',
        actor=root_actor,
    )
    with pytest.raises(DeleteConflict) as excinfo:
        services.delete_role(account=account, role_name="deployer", actor=root_actor)
    assert excinfo.value.message == "Cannot delete entity, must delete policies first."
    policy_services.delete_role_policy(
        account=account, role_name="deployer", policy_name="p", actor=root_actor
    )

    services.delete_role(account=account, role_name="deployer", actor=root_actor)

    assert not Role.objects.exists()
    assert AuditEvent.objects.get(action="iam:DeleteRole").before["RoleName"] == "deployer"
    assert ChangeEvent.objects.filter(kind="role", priority=True).exists()
    with pytest.raises(NoSuchEntity) as excinfo:
        services.delete_role(account=account, role_name="deployer", actor=root_actor)
    assert excinfo.value.message == "The role with name deployer cannot be found."


def test_it_sets_and_removes_permissions_boundaries_keeping_usage_counts(account, root_actor):
    services.create_user(account=account, user_name="alice", actor=root_actor)
    make_role(account, root_actor, permissions_boundary=READ_ONLY)
    boundary = ManagedPolicy.objects.get(name="IAMReadOnlyAccess")
    assert boundary.permissions_boundary_usage_count == 1

    user = services.put_user_permissions_boundary(
        account=account, user_name="alice", permissions_boundary=READ_ONLY, actor=root_actor
    )
    assert user.permissions_boundary == boundary
    boundary.refresh_from_db()
    assert boundary.permissions_boundary_usage_count == 2
    event = AuditEvent.objects.get(action="iam:PutUserPermissionsBoundary")
    assert event.before["PermissionsBoundary"] is None
    assert event.after["PermissionsBoundary"] == READ_ONLY

    services.delete_user_permissions_boundary(account=account, user_name="alice", actor=root_actor)
    services.delete_role_permissions_boundary(
        account=account, role_name="deployer", actor=root_actor
    )

    boundary.refresh_from_db()
    assert boundary.permissions_boundary_usage_count == 0
    with pytest.raises(NoSuchEntity):
        services.put_role_permissions_boundary(
            account=account,
            role_name="deployer",
            permissions_boundary="arn:aws:iam::111111111111:policy/Nope",
            actor=root_actor,
        )


def test_it_keeps_an_instance_profile_to_one_role(account, root_actor):
    make_role(account, root_actor, name="a")
    make_role(account, root_actor, name="b")
    profile = services.create_instance_profile(
        account=account, instance_profile_name="web", path="/apps/", actor=root_actor
    )
    assert re.fullmatch(r"AIPA[A-Z2-7]{17}", profile.unique_id)
    assert profile.arn == "arn:aws:iam::111111111111:instance-profile/apps/web"

    services.add_role_to_instance_profile(
        account=account, instance_profile_name="web", role_name="a", actor=root_actor
    )
    with pytest.raises(LimitExceeded) as excinfo:
        services.add_role_to_instance_profile(
            account=account, instance_profile_name="web", role_name="b", actor=root_actor
        )

    assert excinfo.value.message == (
        "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1"
    )
    assert InstanceProfile.objects.get().role.name == "a"


def test_it_refuses_to_delete_an_instance_profile_holding_a_role(account, root_actor):
    make_role(account, root_actor)
    services.create_instance_profile(account=account, instance_profile_name="web", actor=root_actor)
    services.add_role_to_instance_profile(
        account=account, instance_profile_name="web", role_name="deployer", actor=root_actor
    )

    with pytest.raises(DeleteConflict):
        services.delete_instance_profile(
            account=account, instance_profile_name="web", actor=root_actor
        )

    services.remove_role_from_instance_profile(
        account=account, instance_profile_name="web", role_name="deployer", actor=root_actor
    )
    services.delete_instance_profile(account=account, instance_profile_name="WEB", actor=root_actor)
    assert not InstanceProfile.objects.exists()
    with pytest.raises(NoSuchEntity) as excinfo:
        services.delete_instance_profile(
            account=account, instance_profile_name="web", actor=root_actor
        )
    assert excinfo.value.message == "Instance Profile web cannot be found."


def test_it_refuses_a_duplicate_instance_profile(account, root_actor):
    services.create_instance_profile(account=account, instance_profile_name="web", actor=root_actor)

    with pytest.raises(EntityAlreadyExists) as excinfo:
        services.create_instance_profile(
            account=account, instance_profile_name="Web", actor=root_actor
        )

    assert excinfo.value.message == "Instance Profile Web already exists."
