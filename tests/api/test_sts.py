"""STS over the Query API: caller identity, session tokens with MFA, roles and chaining."""

from __future__ import annotations

import json

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.utils import timezone

from identity.models import Role, TemporaryCredential
from tests.api.conftest import client, session_keys
from tests.api.test_users import error_of

TRUST_ACCOUNT = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }
)
READ_ONLY_USERS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}],
    }
)


def make_role(iam, name: str, **kwargs) -> str:
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ACCOUNT, **kwargs)["Role"][
        "Arn"
    ]
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=READ_ONLY_USERS)
    return arn


def test_it_tells_the_caller_who_it_is(sts):
    identity = sts.get_caller_identity()
    assert identity["Account"] == "111111111111"
    assert identity["Arn"] == "arn:aws:iam::111111111111:user/admin"
    assert identity["UserId"].startswith("AIDA")


def test_it_assumes_a_role_and_the_session_has_the_role_permissions(live_server, iam, sts):
    role_arn = make_role(iam, "reader", MaxSessionDuration=7200)
    answer = sts.assume_role(
        RoleArn=role_arn,
        RoleSessionName="ci@build",
        DurationSeconds=7200,
        Tags=[{"Key": "project", "Value": "alpha"}],
        TransitiveTagKeys=["project"],
    )

    assert answer["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::111111111111:assumed-role/reader/ci@build"
    )
    credentials = answer["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    assert 7100 < (credentials["Expiration"] - timezone.now()).total_seconds() <= 7200
    stored = TemporaryCredential.objects.get(pk=credentials["AccessKeyId"])
    assert credentials["SessionToken"] not in stored.session_token_hash
    assert credentials["SecretAccessKey"] not in stored.secret_encrypted

    keys = session_keys(credentials)
    session_sts = client("sts", live_server, keys)
    assert session_sts.get_caller_identity()["Arn"] == answer["AssumedRoleUser"]["Arn"]
    session_iam = client("iam", live_server, keys)
    assert "Users" in session_iam.list_users()
    with pytest.raises(ClientError) as excinfo:
        session_iam.create_user(UserName="nope")
    code, message, status = error_of(excinfo)
    assert (code, status) == ("AccessDenied", 403)
    assert message.startswith(
        "User: arn:aws:sts::111111111111:assumed-role/reader/ci@build is not authorized to "
        "perform: iam:CreateUser on resource: arn:aws:iam::111111111111:user/nope"
    )


def test_it_caps_role_chaining_at_one_hour_and_carries_transitive_tags(live_server, iam, sts):
    first = make_role(iam, "first", MaxSessionDuration=7200)
    second = make_role(iam, "second", MaxSessionDuration=7200)
    iam.put_role_policy(
        RoleName="first",
        PolicyName="chain",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                        "Resource": second,
                    }
                ],
            }
        ),
    )
    keys = session_keys(
        sts.assume_role(
            RoleArn=first,
            RoleSessionName="one",
            Tags=[{"Key": "team", "Value": "blue"}],
            TransitiveTagKeys=["team"],
        )["Credentials"]
    )
    chained_sts = client("sts", live_server, keys)

    with pytest.raises(ClientError) as excinfo:
        chained_sts.assume_role(RoleArn=second, RoleSessionName="two", DurationSeconds=7200)
    assert error_of(excinfo) == (
        "ValidationError",
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
        "role chaining.",
        400,
    )

    answer = chained_sts.assume_role(RoleArn=second, RoleSessionName="two")
    stored = TemporaryCredential.objects.get(pk=answer["Credentials"]["AccessKeyId"])
    assert stored.session_tags == [{"Key": "team", "Value": "blue"}]
    assert stored.assumed_by_arn == "arn:aws:sts::111111111111:assumed-role/first/one"


def test_it_denies_assume_role_when_the_trust_policy_does_not_allow(live_server, iam, limited):
    role_arn = make_role(iam, "guarded")
    limited_sts = client("sts", live_server, limited)
    with pytest.raises(ClientError) as excinfo:
        limited_sts.assume_role(RoleArn=role_arn, RoleSessionName="xx")
    code, message, status = error_of(excinfo)
    assert (code, status) == ("AccessDenied", 403)
    assert message.startswith(
        "User: arn:aws:iam::111111111111:user/limited is not authorized to perform: "
        "sts:AssumeRole on resource: arn:aws:iam::111111111111:role/guarded"
    )


def test_it_validates_duration_and_session_name(live_server, admin, iam, sts):
    role_arn = make_role(iam, "short")
    # boto3 validates too; switch that off to see the server's own answer.
    unchecked = client("sts", live_server, admin, config=Config(parameter_validation=False))
    with pytest.raises(ClientError) as excinfo:
        unchecked.assume_role(RoleArn=role_arn, RoleSessionName="bad name")
    assert error_of(excinfo) == (
        "ValidationError",
        "1 validation error detected: Value 'bad name' at 'roleSessionName' failed to satisfy "
        r"constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*",
        400,
    )
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="ok", DurationSeconds=7200)
    assert error_of(excinfo) == (
        "ValidationError",
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        400,
    )


def test_it_stops_revoked_and_expired_sessions(live_server, iam, sts):
    role_arn = make_role(iam, "revocable")
    keys = session_keys(sts.assume_role(RoleArn=role_arn, RoleSessionName="sess")["Credentials"])
    session_iam = client("iam", live_server, keys)
    session_iam.list_users()

    Role.objects.filter(name="revocable").update(sessions_revoked_before=timezone.now())
    with pytest.raises(ClientError) as excinfo:
        session_iam.list_users()
    assert error_of(excinfo)[0] == "AccessDenied"
    assert "with an explicit deny" in error_of(excinfo)[1]

    TemporaryCredential.objects.filter(pk=keys.access_key_id).update(expires_at=timezone.now())
    with pytest.raises(ClientError) as excinfo:
        session_iam.list_users()
    assert error_of(excinfo) == (
        "ExpiredToken",
        "The security token included in the request is expired",
        403,
    )


def test_it_keeps_session_tokens_without_mfa_out_of_iam(live_server, sts):
    credentials = sts.get_session_token(DurationSeconds=900)["Credentials"]
    keys = session_keys(credentials)
    assert client("sts", live_server, keys).get_caller_identity()["Arn"].endswith(":user/admin")
    with pytest.raises(ClientError) as excinfo:
        client("iam", live_server, keys).list_users()
    assert error_of(excinfo)[0] == "InvalidClientTokenId"
    with pytest.raises(ClientError) as excinfo:
        client("sts", live_server, keys).get_session_token()
    assert error_of(excinfo)[0] == "AccessDenied"


def test_it_refuses_a_session_token_without_its_token(live_server, sts):
    credentials = sts.get_session_token()["Credentials"]
    credentials["SessionToken"] = "forged"
    with pytest.raises(ClientError) as excinfo:
        client("sts", live_server, session_keys(credentials)).get_caller_identity()
    assert error_of(excinfo) == (
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
        403,
    )
