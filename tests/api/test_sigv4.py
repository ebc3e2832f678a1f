"""Signature Version 4 as AWS verifies it, and the protocol's refusals before any work."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from api import sigv4
from api.sigv4 import BAD_SIGNATURE_MESSAGE
from identity.models import AccessKey
from tests.api.conftest import ADMIN_KEY_ID, ADMIN_SECRET, Keys, client
from tests.api.test_users import error_of

INVALID_TOKEN = "The security token included in the request is invalid."


def send(
    live_server: Any,
    body: str,
    *,
    service: str = "iam",
    secret: str = ADMIN_SECRET,
    when: dt.datetime | str | None = None,
    tamper: str | None = None,
) -> tuple[int, str]:
    """A raw signed POST, so a test can sign one thing and send another."""
    request = AWSRequest(
        method="POST",
        url=live_server.url + "/",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    signer = SigV4Auth(Credentials(ADMIN_KEY_ID, secret), service, "eu-west-3")
    if when is not None:
        stamp = when if isinstance(when, str) else when.strftime("%Y%m%dT%H%M%SZ")
        request.context["timestamp"] = stamp
        signer._modify_request_before_signing(request)
        signature = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        signer._inject_signature_to_request(request, signature)
    else:
        signer.add_auth(request)
    prepared = request.prepare()
    data = (tamper if tamper is not None else body).encode()
    http = urllib.request.Request(prepared.url, data=data, method="POST")
    for name, value in prepared.headers.items():
        if name.lower() != "content-length":
            http.add_header(name, value)
    try:
        with urllib.request.urlopen(http) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_it_refuses_a_wrong_secret(live_server, admin):
    iam = client("iam", live_server, Keys(ADMIN_KEY_ID, "not-the-secret-000000000000000000000000"))
    with pytest.raises(ClientError) as excinfo:
        iam.list_users()
    assert error_of(excinfo) == ("SignatureDoesNotMatch", BAD_SIGNATURE_MESSAGE, 403)
    assert "not-the-secret" not in str(excinfo.value.response)


def test_it_refuses_unknown_and_inactive_keys(live_server, admin):
    unknown = client("iam", live_server, Keys("AKIAUNKNOWN00000000", ADMIN_SECRET))
    with pytest.raises(ClientError) as excinfo:
        unknown.list_users()
    assert error_of(excinfo) == ("InvalidClientTokenId", INVALID_TOKEN, 403)

    AccessKey.objects.filter(pk=ADMIN_KEY_ID).update(status="Inactive")
    with pytest.raises(ClientError) as excinfo:
        client("iam", live_server, admin).list_users()
    assert error_of(excinfo) == ("InvalidClientTokenId", INVALID_TOKEN, 403)


def test_it_refuses_a_request_signed_more_than_five_minutes_ago(live_server, admin):
    signed_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)
    status, body = send(live_server, "Action=ListUsers&Version=2010-05-08", when=signed_at)
    assert status == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in body
    assert f"Signature expired: {signed_at:%Y%m%dT%H%M%SZ} is now earlier than" in body
    assert " - 5 min.)" in body


def test_it_refuses_a_date_that_is_not_a_date_as_an_incomplete_signature(live_server, admin):
    status, body = send(live_server, "Action=ListUsers&Version=2010-05-08", when="20261328T250000Z")
    assert status == 400
    assert "<Code>IncompleteSignature</Code>" in body
    assert "Date must be in ISO-8601 'basic format'. Got '20261328T250000Z'." in body


def test_it_accepts_any_region_and_a_fresh_signature(live_server, admin):
    status, body = send(live_server, "Action=ListUsers&Version=2010-05-08")
    assert status == 200
    assert "<ListUsersResponse" in body
    assert "<UserName>admin</UserName>" in body


def test_it_refuses_a_tampered_body(live_server, admin):
    status, body = send(
        live_server,
        "Action=ListUsers&Version=2010-05-08",
        tamper="Action=CreateUser&Version=2010-05-08&UserName=evil",
    )
    assert status == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in body
    assert not AccessKey.objects.filter(user__name="evil").exists()


def test_it_rejects_unknown_actions_versions_and_repeated_parameters(live_server, admin):
    status, body = send(live_server, "Action=FlyToTheMoon&Version=2010-05-08")
    assert (status, "<Code>InvalidAction</Code>") == (400, body[body.index("<Code>") :][:26])
    assert "Could not find operation FlyToTheMoon for version 2010-05-08" in body

    status, body = send(live_server, "Action=ListUsers&Version=2011-06-15")
    assert status == 400
    assert "<Code>InvalidAction</Code>" in body

    status, body = send(live_server, "Action=CreateUser&Version=2010-05-08&UserName=a&UserName=b")
    assert status == 400
    assert "<Code>MalformedQueryString</Code>" in body
    assert "Parameter UserName is given more than once." in body


def test_it_refuses_an_oversized_body(live_server, admin):
    status, body = send(
        live_server, "Action=ListUsers&Version=2010-05-08&Pad=" + "x" * (1024 * 1024 + 1)
    )
    assert status == 413
    assert "<Code>RequestEntityTooLarge</Code>" in body


def test_it_accepts_a_presigned_get_and_refuses_one_past_its_expiry(live_server, admin):
    def presign(expires: int) -> str:
        request = AWSRequest(
            method="GET",
            url=live_server.url + "/?Action=GetCallerIdentity&Version=2011-06-15",
        )
        SigV4QueryAuth(
            Credentials(ADMIN_KEY_ID, ADMIN_SECRET), "sts", "us-east-1", expires
        ).add_auth(request)
        return request.prepare().url

    with urllib.request.urlopen(presign(60)) as response:
        body = response.read().decode()
    assert "<Arn>arn:aws:iam::111111111111:user/admin</Arn>" in body
    assert 'xmlns="https://sts.amazonaws.com/doc/2011-06-15/"' in body

    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(presign(604801))
    assert excinfo.value.code == 400
    assert "X-Amz-Expires must be less than a week" in excinfo.value.read().decode()


def presigned_at(live_server: Any, when: dt.datetime, expires: int) -> str:
    """A presigned GetCallerIdentity URL signed at ``when`` (botocore's own signer)."""
    request = AWSRequest(
        method="GET", url=live_server.url + "/?Action=GetCallerIdentity&Version=2011-06-15"
    )
    signer = SigV4QueryAuth(Credentials(ADMIN_KEY_ID, ADMIN_SECRET), "sts", "us-east-1", expires)
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    signer._modify_request_before_signing(request)
    signature = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    signer._inject_signature_to_request(request, signature)
    return request.prepare().url


def test_it_refuses_a_presigned_request_past_its_expiry_in_aws_words(live_server, admin):
    signed_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    with urllib.request.urlopen(presigned_at(live_server, signed_at, 3 * 3600)) as response:
        assert response.status == 200

    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(presigned_at(live_server, signed_at, 3600))
    body = excinfo.value.read().decode()
    assert excinfo.value.code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in body
    assert f"Signature expired: {signed_at:%Y%m%dT%H%M%SZ} is now earlier than " in body
    assert " - 3600 sec.)</Message>" in body


def test_it_refuses_root_access_keys_unless_allowed(live_server, api_account, settings):
    from identity import crypto
    from identity.models import User

    root = User.objects.get(account=api_account, is_root=True)
    AccessKey.objects.create(
        access_key_id="AKIAROOT00000000001",
        user=root,
        secret_encrypted=crypto.encrypt("root-secret-0000000000000000000000000000"),
    )
    sts = client(
        "sts", live_server, Keys("AKIAROOT00000000001", "root-secret-0000000000000000000000000000")
    )
    with pytest.raises(ClientError) as excinfo:
        sts.get_caller_identity()
    assert error_of(excinfo) == (
        "AccessDenied",
        "User: arn:aws:iam::111111111111:root is not authorized to use access keys of the root "
        "user on this installation. Use an IAM user or role (AWS recommends not creating root "
        "access keys); an administrator can allow them with PORTCULLIS_ALLOW_ROOT_ACCESS_KEYS.",
        403,
    )

    settings.ALLOW_ROOT_ACCESS_KEYS = True
    assert sts.get_caller_identity()["Arn"] == "arn:aws:iam::111111111111:root"


def test_it_answers_unsigned_calls_with_aws_error_and_leaves_get_to_the_console(live_server, admin):
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(
            urllib.request.Request(
                live_server.url + "/",
                data=b"Action=ListUsers&Version=2010-05-08",
                method="POST",
            )
        )
    assert excinfo.value.code == 403
    body = excinfo.value.read().decode()
    assert "<Code>MissingAuthenticationToken</Code>" in body
    assert "<Message>Request is missing Authentication Token</Message>" in body

    with urllib.request.urlopen(live_server.url + "/") as response:
        page = response.read().decode()
    assert "ErrorResponse" not in page


def test_it_updates_access_key_last_used(iam):
    iam.list_users()
    last = iam.get_access_key_last_used(AccessKeyId=ADMIN_KEY_ID)
    assert last["UserName"] == "admin"
    assert last["AccessKeyLastUsed"]["ServiceName"] == "iam"
    assert last["AccessKeyLastUsed"]["Region"] == "us-east-1"
    assert json.dumps(last, default=str)


def test_it_stops_a_deactivated_key_and_sees_a_renamed_user_at_once_despite_the_cache(
    live_server, iam
):
    iam.create_user(UserName="bob")
    iam.put_user_policy(
        UserName="bob",
        PolicyName="self",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="bob")["AccessKey"]
    bob = client("iam", live_server, Keys(key["AccessKeyId"], key["SecretAccessKey"]))
    for _ in range(3):
        assert bob.get_user()["User"]["UserName"] == "bob"

    iam.update_user(UserName="bob", NewUserName="robert")
    assert bob.get_user()["User"]["Arn"] == "arn:aws:iam::111111111111:user/robert"

    iam.update_access_key(UserName="robert", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(ClientError) as excinfo:
        bob.get_user()
    assert error_of(excinfo) == ("InvalidClientTokenId", INVALID_TOKEN, 403)


@pytest.mark.parametrize("key_length", [0, 1, 32, 64, 65, 200])
def test_its_keyed_hmac_matches_the_standard_library(key_length):
    key, message = os.urandom(key_length), os.urandom(150)
    signer = sigv4.KeyedHmac(key)

    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    assert signer.hexdigest(message) == expected
    assert signer.hexdigest(message) == expected  # reusable
