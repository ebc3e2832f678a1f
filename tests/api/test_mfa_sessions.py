"""MFA-protected API access with boto3, as AWS's "Configuring MFA-protected API access"
describes it: a real TOTP device enabled through the API, codes computed from its seed, and
``aws:MultiFactorAuthPresent`` true only for sessions obtained with a code.

Cast: ``mia``, an IAM user with an access key and an enabled virtual MFA device, whose policy
allows reading users only with MFA and denies creating users without it (AWS's
``BoolIfExists`` idiom, since the key is absent for long-term keys).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from audit.models import AuditEvent
from tests.api.conftest import Keys, client, session_keys, totp_code
from tests.api.test_credentials import enable_device, raises, user_with_key

MIA_ARN = "arn:aws:iam::111111111111:user/mia"
MFA_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadWithMFA",
                "Effect": "Allow",
                "Action": "iam:ListUsers",
                "Resource": "*",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            },
            {"Sid": "CreateUsers", "Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*"},
            {
                "Sid": "DenyCreateWithoutMFA",
                "Effect": "Deny",
                "Action": "iam:CreateUser",
                "Resource": "*",
                "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
            },
        ],
    }
)


@dataclass(frozen=True)
class MfaUser:
    keys: Keys
    serial: str
    seed: bytes
    # The time step of the last code the device accepted (the enabling one).
    step: int


@pytest.fixture
def mia(iam: Any) -> MfaUser:
    keys = user_with_key(iam, "mia")
    iam.put_user_policy(UserName="mia", PolicyName="mfa", PolicyDocument=MFA_POLICY)
    serial, seed, step = enable_device(iam, "mia", "mia-phone")
    return MfaUser(keys, serial, seed, step)


def test_it_requires_mfa_where_the_policy_says_so_for_long_term_keys(live_server, mia):
    mia_iam = client("iam", live_server, mia.keys)

    code, message, _ = raises(mia_iam.list_users)
    assert code == "AccessDenied"
    assert message.endswith("because no identity-based policy allows the iam:ListUsers action")
    code, message, _ = raises(mia_iam.create_user, UserName="nope")
    assert (code, message) == (
        "AccessDenied",
        f"User: {MIA_ARN} is not authorized to perform: iam:CreateUser on resource: "
        "arn:aws:iam::111111111111:user/nope with an explicit deny in an identity-based policy",
    )


def test_it_issues_an_mfa_session_whose_calls_carry_multi_factor_auth_present(live_server, mia):
    mia_sts = client("sts", live_server, mia.keys)
    credentials = mia_sts.get_session_token(
        SerialNumber=mia.serial, TokenCode=totp_code(mia.seed, mia.step + 1), DurationSeconds=900
    )["Credentials"]
    session_iam = client("iam", live_server, session_keys(credentials))

    assert "Users" in session_iam.list_users()
    created = session_iam.create_user(UserName="made-with-mfa")["User"]
    assert created["UserName"] == "made-with-mfa"
    event = AuditEvent.objects.get(action="iam:CreateUser", resource_arn=created["Arn"])
    assert (event.actor_arn, event.access_key_id) == (MIA_ARN, credentials["AccessKeyId"])
    issued = AuditEvent.objects.get(action="sts:GetSessionToken", result="Success")
    assert issued.request_parameters["SerialNumber"] == mia.serial
    assert issued.after["MFAAuthenticated"] is True


def test_it_refuses_wrong_and_replayed_codes(live_server, mia):
    mia_sts = client("sts", live_server, mia.keys)
    wrong = "000000" if totp_code(mia.seed, mia.step + 1) != "000000" else "111111"
    failed = (
        "AccessDenied",
        "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
        403,
    )
    assert raises(mia_sts.get_session_token, SerialNumber=mia.serial, TokenCode=wrong) == failed
    # The code that enabled the device has been used: it is not accepted twice.
    replayed = totp_code(mia.seed, mia.step)
    assert raises(mia_sts.get_session_token, SerialNumber=mia.serial, TokenCode=replayed) == failed


def test_it_keeps_sessions_without_mfa_out_of_iam(live_server, mia):
    credentials = client("sts", live_server, mia.keys).get_session_token()["Credentials"]
    session_iam = client("iam", live_server, session_keys(credentials))
    assert raises(session_iam.list_users) == (
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
        403,
    )


def test_it_assumes_a_role_whose_trust_policy_requires_mfa(live_server, iam, admin, mia):
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": MIA_ARN},
                "Action": "sts:AssumeRole",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            }
        ],
    }
    role_arn = iam.create_role(RoleName="break-glass", AssumeRolePolicyDocument=json.dumps(trust))[
        "Role"
    ]["Arn"]
    iam.put_role_policy(
        RoleName="break-glass",
        PolicyName="read-with-mfa",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iam:ListUsers",
                        "Resource": "*",
                        "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
                    }
                ],
            }
        ),
    )
    mia_sts = client("sts", live_server, mia.keys)
    code, message, _ = raises(mia_sts.assume_role, RoleArn=role_arn, RoleSessionName="no-mfa")
    assert code == "AccessDenied"
    assert message.startswith(
        f"User: {MIA_ARN} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    )
    _, _, encoded = message.partition(". Encoded authorization failure message: ")
    # Why it was denied is for those allowed sts:DecodeAuthorizationMessage (the administrator).
    code, message, _ = raises(mia_sts.decode_authorization_message, EncodedMessage=encoded)
    assert code == "AccessDenied"
    assert "sts:DecodeAuthorizationMessage" in message
    decoded = json.loads(
        client("sts", live_server, admin).decode_authorization_message(EncodedMessage=encoded)[
            "DecodedMessage"
        ]
    )
    assert decoded["allowed"] is False
    assert decoded["context"]["principal"] == {"arn": MIA_ARN}
    assert (decoded["context"]["action"], decoded["context"]["resource"]) == (
        "sts:AssumeRole",
        role_arn,
    )
    assert "aws:MultiFactorAuthPresent" in decoded["context"]["missingContextValues"]
    assert raises(
        client("sts", live_server, admin).decode_authorization_message,
        EncodedMessage=encoded[:-8] + "AAAAAAA=",
    ) == (
        "InvalidAuthorizationMessageException",
        "The error message is invalid or was not encoded for this account.",
        400,
    )

    answer = mia_sts.assume_role(
        RoleArn=role_arn,
        RoleSessionName="with-mfa",
        SerialNumber=mia.serial,
        TokenCode=totp_code(mia.seed, mia.step + 1),
    )
    session_iam = client("iam", live_server, session_keys(answer["Credentials"]))
    assert "Users" in session_iam.list_users()
    assumed = AuditEvent.objects.get(action="sts:AssumeRole", result="Success")
    assert assumed.after["MFAAuthenticated"] is True
