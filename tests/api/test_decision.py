"""The decision API: SigV4-signed JSON questions, the engine's answers, audited refusals.

The cast, in Alice's company (account 111111111111):

- ``app``: the application asking. Its policy allows ``portcullis:Authorize`` on the account's
  users, not on its roles.
- ``alice``: may read ``arn:aws:s3:::photos/*``, is explicitly denied deleting anything, and may
  tag only with ``team=blue`` (a condition on a request key).
- ``nosy``: has an access key and no permission to ask anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.test import Client, override_settings

from api import decision
from audit.models import AuditEvent
from identity import services as identity_services
from identity.models import Account, User
from policies import propagation, store
from policies import services as policy_services
from policies.models import ChangeEvent

APP_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "portcullis:Authorize",
            "Resource": "arn:aws:iam::111111111111:user/*",
        }
    ],
}
ALICE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ReadPhotos",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::photos/*",
        },
        {"Sid": "NeverDelete", "Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
        {
            "Sid": "TagBlue",
            "Effect": "Allow",
            "Action": "s3:PutObjectTagging",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestTag/team": "blue"}},
        },
    ],
}
ALICE = "arn:aws:iam::111111111111:user/alice"


@pytest.fixture(autouse=True)
def _empty_store(clean_store: None) -> None:
    """Each test starts with no compiled sets in Redis (see tests.worker.clean_store)."""


@dataclass(frozen=True)
class Key:
    access_key_id: str
    secret: str


def _user_with_key(account: Account, actor, name: str, policy: dict | None) -> Key:  # type: ignore[no-untyped-def]
    identity_services.create_user(account=account, user_name=name, actor=actor)
    if policy is not None:
        policy_services.put_user_policy(
            account=account,
            user_name=name,
            policy_name="main",
            policy_document=json.dumps(policy),
            actor=actor,
        )
    created = identity_services.create_access_key(account=account, user_name=name, actor=actor)
    return Key(created.access_key.access_key_id, created.secret_access_key)


@pytest.fixture
def app_key(account, root_actor) -> Key:  # type: ignore[no-untyped-def]
    return _user_with_key(account, root_actor, "app", APP_POLICY)


@pytest.fixture
def alice(account, root_actor) -> None:  # type: ignore[no-untyped-def]
    identity_services.create_user(account=account, user_name="alice", actor=root_actor)
    policy_services.put_user_policy(
        account=account,
        user_name="alice",
        policy_name="main",
        policy_document=json.dumps(ALICE_POLICY),
        actor=root_actor,
    )


@pytest.fixture
def nosy_key(account, root_actor) -> Key:  # type: ignore[no-untyped-def]
    return _user_with_key(account, root_actor, "nosy", None)


def signed_post(  # type: ignore[no-untyped-def]
    path: str,
    body: object,
    key: Key,
    *,
    client: Client | None = None,
    remote_addr: str = "127.0.0.1",
    host: str = "testserver",
):
    data = json.dumps(body)
    request = AWSRequest(
        method="POST",
        url=f"http://{host}{path}",
        data=data,
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials(key.access_key_id, key.secret), "portcullis", "eu-west-1").add_auth(
        request
    )
    headers = {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in request.headers.items()
        if name.lower() != "content-type"
    }
    return (client or Client()).post(
        path,
        data=data,
        content_type="application/json",
        HTTP_HOST=host,
        REMOTE_ADDR=remote_addr,
        **headers,
    )


def test_it_allows_with_the_statement_that_decided_and_the_change_sequence(app_key, alice):
    response = signed_post(
        "/v1/authorize",
        {"principal": ALICE, "action": "s3:GetObject", "resource": "arn:aws:s3:::photos/cat.jpg"},
        app_key,
    )

    body = response.json()
    assert response.status_code == 200, body
    assert body["decision"] == "allowed"
    assert body["allowed"] is True
    assert body["matchedStatements"] == [
        {
            "policyId": f"{ALICE}#inline/main",
            "policyKind": "identity",
            "statementIndex": 0,
            "sid": "ReadPhotos",
            "effect": "Allow",
        }
    ]
    assert body["changeSequence"] == ChangeEvent.objects.order_by("-id").first().pk
    assert response["Content-Type"] == "application/json"
    assert response["Content-Length"] == str(len(response.content))  # not sent chunked


def test_it_refuses_a_body_that_is_not_json_as_rfc_8259_defines_it(app_key, alice):
    response = signed_post(
        "/v1/authorize",
        {"principal": ALICE, "action": "s3:GetObject", "context": {"aws:EpochTime": float("nan")}},
        app_key,
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "ValidationError"
    assert error["message"].startswith("The request body is not valid JSON")


def test_it_reports_an_explicit_deny_and_its_statement(app_key, alice):
    response = signed_post(
        "/v1/authorize",
        {"principal": ALICE, "action": "s3:DeleteObject", "resource": "arn:aws:s3:::photos/a"},
        app_key,
    )

    body = response.json()
    assert (response.status_code, body["decision"], body["allowed"]) == (
        200,
        "explicitDeny",
        False,
    )
    assert [m["sid"] for m in body["matchedStatements"]] == ["NeverDelete"]


def test_it_reports_the_context_keys_a_condition_missed(app_key, alice):
    without = signed_post(
        "/v1/authorize", {"principal": ALICE, "action": "s3:PutObjectTagging"}, app_key
    ).json()
    with_tag = signed_post(
        "/v1/authorize",
        {
            "principal": ALICE,
            "action": "s3:PutObjectTagging",
            "context": {"aws:RequestTag/team": "blue"},
        },
        app_key,
    ).json()

    assert without["decision"] == "implicitDeny"
    assert without["missingContextValues"] == ["aws:RequestTag/team"]
    assert with_tag["decision"] == "allowed"


def test_it_refuses_and_audits_a_caller_without_portcullis_authorize(nosy_key, alice):
    response = signed_post(
        "/v1/authorize", {"principal": ALICE, "action": "s3:GetObject"}, nosy_key
    )

    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "AccessDenied",
            "message": "User: arn:aws:iam::111111111111:user/nosy is not authorized to perform: "
            f"portcullis:Authorize on resource: {ALICE} because no identity-based policy "
            "allows the portcullis:Authorize action",
        }
    }
    event = AuditEvent.objects.get(action="portcullis:Authorize")
    assert event.category == "decision"
    assert event.actor_arn == "arn:aws:iam::111111111111:user/nosy"
    assert event.access_key_id == nosy_key.access_key_id
    assert event.resource_arn == ALICE
    assert event.error_code == "AccessDenied"


def test_it_answers_a_batch_in_order_with_a_status_per_request(app_key, alice, account):
    role_arn = "arn:aws:iam::111111111111:role/deployer"
    response = signed_post(
        "/v1/authorize/batch",
        {
            "requests": [
                {"principal": ALICE, "action": "s3:GetObject", "resource": "arn:aws:s3:::photos/a"},
                {"principal": ALICE, "action": "s3:GetObject", "resource": "arn:aws:s3:::other/a"},
                {"principal": role_arn, "action": "s3:GetObject"},
                {"principal": ALICE},
            ]
        },
        app_key,
    )

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["status"], r.get("decision")) for r in results] == [
        (200, "allowed"),
        (200, "implicitDeny"),
        (403, None),
        (400, None),
    ]
    assert results[3]["error"] == {
        "code": "ValidationError",
        "message": "'action' must be a non-empty string.",
    }
    assert AuditEvent.objects.filter(action="portcullis:Authorize", resource_arn=role_arn).count()


def test_it_refuses_a_batch_of_more_than_100(app_key, alice):
    response = signed_post(
        "/v1/authorize/batch",
        {"requests": [{"principal": ALICE, "action": "s3:GetObject"}] * 101},
        app_key,
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "'requests' may hold at most 100 requests."


def test_it_refuses_a_bad_signature_and_unsigned_calls(app_key, alice):
    forged = signed_post(
        "/v1/authorize",
        {"principal": ALICE, "action": "s3:GetObject"},
        Key(app_key.access_key_id, "not-the-secret"),
    )
    unsigned = Client().post(
        "/v1/authorize",
        data=json.dumps({"principal": ALICE, "action": "s3:GetObject"}),
        content_type="application/json",
    )

    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "SignatureDoesNotMatch"
    assert unsigned.status_code == 403
    assert unsigned.json()["error"]["code"] == "MissingAuthenticationToken"


def test_it_refuses_a_host_that_is_not_allowed(app_key, alice):
    # /v1/ skips the console's CommonMiddleware; the Host check must still happen. Signed for
    # that host, so only ALLOWED_HOSTS can be what refuses it.
    response = signed_post(
        "/v1/authorize",
        {"principal": ALICE, "action": "s3:GetObject"},
        app_key,
        host="evil.example",
    )
    ping = Client().get("/v1/ping", HTTP_HOST="evil.example")

    assert response.status_code == 400
    assert b"allowed" not in response.content
    assert ping.status_code == 400


def test_it_answers_404_for_a_principal_that_does_not_exist(app_key):
    response = signed_post(
        "/v1/authorize",
        {"principal": "arn:aws:iam::111111111111:user/ghost", "action": "s3:GetObject"},
        app_key,
    )

    assert response.status_code == 404
    assert response.json()["decision"] == "implicitDeny"
    assert response.json()["error"]["code"] == "NoSuchEntity"


def test_it_decides_from_the_database_when_redis_is_unreachable(app_key, alice):
    closed_port = "redis://127.0.0.1:1/0"
    with override_settings(REDIS_URL=closed_port):
        store.reset_client()
        try:
            response = signed_post(
                "/v1/authorize",
                {"principal": ALICE, "action": "s3:GetObject", "resource": "arn:aws:s3:::photos/a"},
                app_key,
            )
        finally:
            store.reset_client()

    assert response.status_code == 200
    assert (response.json()["decision"], response.json()["source"]) == ("allowed", "database")


def test_it_serves_its_openapi_document(db):
    response = Client().get("/v1/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {"/v1/authorize", "/v1/authorize/batch", "/v1/openapi.json"}
    request_schema = document["components"]["schemas"]["AuthorizeRequest"]
    assert request_schema["required"] == ["principal", "action"]


def test_it_stops_a_deactivated_callers_key_at_once_despite_the_cache(
    transactional_db, account, root_actor, app_key, alice
):
    question = {"principal": ALICE, "action": "s3:GetObject", "resource": "arn:aws:s3:::photos/a"}
    assert signed_post("/v1/authorize", question, app_key).status_code == 200
    assert signed_post("/v1/authorize", question, app_key).status_code == 200

    identity_services.update_access_key(
        account=account,
        access_key_id=app_key.access_key_id,
        status="Inactive",
        user_name="app",
        actor=root_actor,
    )
    response = signed_post("/v1/authorize", question, app_key)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "InvalidClientTokenId"


def test_it_reuses_a_callers_permission_to_ask_only_until_the_callers_policies_change(
    transactional_db, account, root_actor, app_key, alice
):
    propagation.rebuild()  # what the worker publishes: the decision path reads the store
    question = {"principal": ALICE, "action": "s3:GetObject", "resource": "arn:aws:s3:::photos/a"}
    first = signed_post("/v1/authorize", question, app_key)
    assert (first.status_code, first.json()["source"]) == (200, "store")
    app = store.read(unique_id=User.objects.get(name="app").unique_id)
    assert ALICE in app.derived[decision._ALLOWED_TO_ASK]  # kept with the app's entry

    roles_only = {**APP_POLICY["Statement"][0], "Resource": "arn:aws:iam::111111111111:role/*"}
    policy_services.put_user_policy(
        account=account,
        user_name="app",
        policy_name="main",
        policy_document=json.dumps({"Version": "2012-10-17", "Statement": [roles_only]}),
        actor=root_actor,
    )
    response = signed_post("/v1/authorize", question, app_key)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "AccessDenied"


def test_it_decides_a_conditional_permission_to_ask_on_every_request(account, root_actor, alice):
    from_the_lan = {
        **APP_POLICY["Statement"][0],
        "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    }
    key = _user_with_key(
        account, root_actor, "lan", {"Version": "2012-10-17", "Statement": [from_the_lan]}
    )
    propagation.rebuild()
    question = {"principal": ALICE, "action": "s3:GetObject", "resource": "arn:aws:s3:::photos/a"}

    inside = signed_post("/v1/authorize", question, key, remote_addr="10.1.2.3")
    again = signed_post("/v1/authorize", question, key, remote_addr="10.1.2.3")
    outside = signed_post("/v1/authorize", question, key, remote_addr="192.0.2.7")

    assert (inside.status_code, inside.json()["source"]) == (200, "store")
    assert again.status_code == 200
    assert outside.status_code == 403
    assert AuditEvent.objects.filter(
        action="portcullis:Authorize", error_code="AccessDenied", resource_arn=ALICE
    ).exists()
