"""The Query API with boto3 on a live server: the OIDC provider operations, and
AssumeRoleWithWebIdentity called unsigned with a real provider's ID token."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import boto3
import botocore
import pytest
from botocore.config import Config

from api.testdouble import import_access_key
from audit.context import Actor
from audit.models import AuditEvent
from identity.models import Role
from policies import services as policy_services
from tests.federation.conftest import trust_policy

ADMIN_KEY_ID = "AKIAFEDADMIN0000001"
ADMIN_SECRET = "federation-admin-secret-000000000000000"
NO_RETRIES = Config(retries={"total_max_attempts": 1})


@pytest.fixture
def admin_keys(transactional_db, account):
    import_access_key(
        account_id=account.id,
        user_name="admin",
        access_key_id=ADMIN_KEY_ID,
        secret_access_key=ADMIN_SECRET,
    )
    policy_services.attach_user_policy(
        account=account,
        user_name="admin",
        policy_arn="arn:aws:iam::aws:policy/AdministratorAccess",
        actor=Actor.system("test"),
    )


def client(service, live_server, **kwargs):
    return boto3.client(
        service,
        endpoint_url=live_server.url,
        region_name="us-east-1",
        config=kwargs.pop("config", NO_RETRIES),
        **kwargs,
    )


@pytest.fixture
def iam(live_server, admin_keys):
    return client(
        "iam", live_server, aws_access_key_id=ADMIN_KEY_ID, aws_secret_access_key=ADMIN_SECRET
    )


@pytest.fixture
def anonymous_sts(live_server):
    # AssumeRoleWithWebIdentity needs no AWS credentials: the caller has none.
    return client(
        "sts",
        live_server,
        config=Config(signature_version=botocore.UNSIGNED, retries={"total_max_attempts": 1}),
    )


def test_it_manages_providers_through_boto3(iam, idp):
    arn = iam.create_open_id_connect_provider(
        Url=idp.issuer,
        ClientIDList=["portcullis-console"],
        ThumbprintList=["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
        Tags=[{"Key": "team", "Value": "platform"}],
    )["OpenIDConnectProviderArn"]
    host = idp.issuer.removeprefix("http://")
    assert arn == f"arn:aws:iam::111111111111:oidc-provider/{host}"

    iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="cli")
    got = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert got["Url"] == host
    assert got["ClientIDList"] == ["portcullis-console", "cli"]
    assert got["Tags"] == [{"Key": "team", "Value": "platform"}]
    listed = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    assert [p["Arn"] for p in listed] == [arn]

    with pytest.raises(iam.exceptions.EntityAlreadyExistsException) as excinfo:
        iam.create_open_id_connect_provider(Url=idp.issuer, ClientIDList=["x"])
    assert excinfo.value.response["Error"]["Message"] == (
        f"Provider with url {idp.issuer} already exists."
    )

    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)


@pytest.fixture
def web_role(iam, account, idp):
    arn = iam.create_open_id_connect_provider(Url=idp.issuer, ClientIDList=["portcullis-console"])[
        "OpenIDConnectProviderArn"
    ]
    host = idp.issuer.removeprefix("http://")
    role = iam.create_role(
        RoleName="CiDeployer",
        AssumeRolePolicyDocument=trust_policy(arn, host, tags=True),
        MaxSessionDuration=7200,
    )["Role"]
    policy_services.put_role_policy(
        account=account,
        role_name="CiDeployer",
        policy_name="list-users",
        policy_document=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}],
            }
        ),
        actor=Actor.system("test"),
    )
    return role


def test_it_assumes_a_role_with_a_real_id_token_unsigned_and_the_credentials_work(
    live_server, anonymous_sts, web_role, idp
):
    token = idp.id_token("alice")

    answer = anonymous_sts.assume_role_with_web_identity(
        RoleArn=web_role["Arn"],
        RoleSessionName="ci-run-42",
        WebIdentityToken=token,
        DurationSeconds=7200,
    )

    assert answer["SubjectFromWebIdentityToken"] == "alice"
    assert answer["Audience"] == "portcullis-console"
    assert answer["Provider"] == idp.issuer
    assert answer["AssumedRoleUser"]["Arn"] == (
        "arn:aws:sts::111111111111:assumed-role/CiDeployer/ci-run-42"
    )
    creds = answer["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    session = dict(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    who = client("sts", live_server, **session).get_caller_identity()
    assert who["Arn"] == "arn:aws:sts::111111111111:assumed-role/CiDeployer/ci-run-42"
    role_iam = client("iam", live_server, **session)
    role_iam.list_users()
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        role_iam.create_user(UserName="intruder")
    assert excinfo.value.response["Error"]["Code"] == "AccessDenied"
    assert excinfo.value.response["Error"]["Message"].startswith(
        "User: arn:aws:sts::111111111111:assumed-role/CiDeployer/ci-run-42 is not authorized "
        "to perform: iam:CreateUser"
    )
    event = AuditEvent.objects.get(action="sts:AssumeRoleWithWebIdentity", result="Success")
    assert event.request_parameters["Subject"] == "alice"


def test_it_answers_rejections_with_aws_error_codes(anonymous_sts, web_role, idp):
    cases = [
        (
            idp.id_token("alice", client_id=idp.other_client_id),
            "InvalidIdentityToken",
            "Incorrect token audience",
        ),
        (
            idp.id_token("mallory"),
            "AccessDenied",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        ),
    ]
    for token, code, message in cases:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            anonymous_sts.assume_role_with_web_identity(
                RoleArn=web_role["Arn"], RoleSessionName="s1", WebIdentityToken=token
            )
        assert excinfo.value.response["Error"]["Code"] == code
        assert excinfo.value.response["Error"]["Message"] == message
    failures = AuditEvent.objects.filter(
        action="sts:AssumeRoleWithWebIdentity", result="Failure"
    ).order_by("id")
    assert [(e.error_code, e.error_message) for e in failures] == [
        (code, message) for _, code, message in cases
    ]


def test_it_refuses_a_role_that_does_not_exist_like_an_untrusted_one(anonymous_sts, web_role, idp):
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        anonymous_sts.assume_role_with_web_identity(
            RoleArn="arn:aws:iam::111111111111:role/Nope",
            RoleSessionName="s1",
            WebIdentityToken=idp.id_token("alice"),
        )
    assert excinfo.value.response["Error"]["Code"] == "AccessDenied"
    assert not Role.objects.filter(name="Nope").exists()


def post_unsigned(client, params):
    return client.post("/", urlencode(params), content_type="application/x-www-form-urlencoded")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        (
            {"RoleSessionName": "s1", "WebIdentityToken": "eyJ.secret.token"},
            "ValidationError",
            "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: "
            "Member must not be null",
        ),
        (
            {
                "RoleArn": "arn:aws:iam::111111111111:role/CiDeployer",
                "RoleSessionName": "s1",
                "WebIdentityToken": "eyJ.secret.token",
                "DurationSeconds": "soon",
            },
            "ValidationError",
            None,
        ),
    ],
)
def test_it_audits_assume_role_with_web_identity_refused_by_the_protocol_parser(
    client, account, params, code, message
):
    response = post_unsigned(
        client, {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", **params}
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert f"<Code>{code}</Code>" in body
    event = AuditEvent.objects.get(action="sts:AssumeRoleWithWebIdentity")
    assert (event.result, event.error_code, event.actor_kind) == (
        "Failure",
        code,
        "federated_user",
    )
    assert f"<Message>{event.error_message}</Message>" in body
    if message is not None:
        assert event.error_message == message
    assert event.request_parameters["WebIdentityToken"] == "***"
    assert event.request_parameters["RoleSessionName"] == "s1"
    assert event.account_id == ("111111111111" if "RoleArn" in params else "")
    assert event.resource_arn == params.get("RoleArn", "")
    assert "secret" not in json.dumps(event.request_parameters)
