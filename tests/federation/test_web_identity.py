"""AssumeRoleWithWebIdentity at the service level: real tokens from a real provider, and each
rejection with AWS's error code, a clear message and an audit event."""

from __future__ import annotations

import json
import re
import time

import jwt
import pytest

from audit.models import AuditEvent
from identity import crypto, federation, services
from identity.errors import AccessDenied
from identity.models import TemporaryCredential
from tests.federation.conftest import META, create_provider, new_rsa_key, trust_policy


@pytest.fixture
def idp_provider(account, root_actor, idp):
    return create_provider(account, idp.issuer, root_actor, mfa_claim_satisfies_mfa=True)


@pytest.fixture
def deployer(account, root_actor, idp_provider):
    host = idp_provider.host_and_path
    return services.create_role(
        account=account,
        role_name="Deployer",
        assume_role_policy_document=trust_policy(idp_provider.arn, host, tags=True),
        max_session_duration=7200,
        actor=root_actor,
    )


def assume(role, token, **kwargs):
    return federation.assume_role_with_web_identity(
        role_arn=role.arn,
        role_session_name=kwargs.pop("session", "alice-session"),
        web_identity_token=token,
        meta=META,
        **kwargs,
    )


def rejection(action=federation.ACTION_ASSUME):
    return AuditEvent.objects.filter(action=action, result="Failure").latest("id")


def test_it_exchanges_a_real_id_token_for_role_credentials(idp, idp_provider, deployer):
    token = idp.id_token("alice", otp=idp.test_otp)

    issued = assume(deployer, token, duration_seconds=7200)

    credential = issued.credential
    assert re.fullmatch(r"ASIA[A-Z2-7]{16}", credential.access_key_id)
    assert (
        issued.assumed_role_arn == "arn:aws:sts::111111111111:assumed-role/Deployer/alice-session"
    )
    assert issued.assumed_role_id == f"{deployer.unique_id}:alice-session"
    assert crypto.decrypt_text(credential.secret_encrypted) == issued.secret_access_key
    assert credential.session_token_hash == federation.hash_session_token(issued.session_token)
    assert issued.session_token not in credential.session_token_hash
    assert credential.federated_subject == "alice"
    assert credential.federated_provider_arn == idp_provider.arn
    assert credential.mfa_authenticated is True
    assert (credential.expires_at - credential.issued_at).total_seconds() == 7200
    assert {t["Key"]: t["Value"] for t in credential.session_tags} == {
        "team": "platform",
        "cost_center": "1234",
    }
    assert credential.transitive_tag_keys == ["team"]
    event = AuditEvent.objects.get(action="sts:AssumeRoleWithWebIdentity", result="Success")
    assert event.actor_arn == idp_provider.arn
    assert event.actor_kind == "federated_user"
    assert event.request_parameters["Subject"] == "alice"
    assert event.request_parameters["WebIdentityToken"] == "***"
    assert event.after["AssumedRoleUser"]["Arn"] == issued.assumed_role_arn
    assert event.after["Amr"] == ["pwd", "mfa"]


def test_it_fetches_the_real_providers_keys_on_first_use(idp, idp_provider, deployer):
    assert idp_provider.jwks_fetched_at is None
    assume(deployer, idp.id_token("alice"))
    idp_provider.refresh_from_db()
    assert [k["kid"] for k in idp_provider.jwks["keys"]] == [idp.kid]
    assert "RS256" in federation.advertised_algorithms(idp_provider)
    assert not any(a.startswith("HS") for a in federation.advertised_algorithms(idp_provider))


def test_it_refuses_a_token_for_another_audience(idp, idp_provider, deployer):
    token = idp.id_token("alice", client_id=idp.other_client_id)

    with pytest.raises(federation.InvalidIdentityToken) as excinfo:
        assume(deployer, token)

    assert excinfo.value.message == "Incorrect token audience"
    event = rejection()
    assert (event.error_code, event.error_message) == (
        "InvalidIdentityToken",
        "Incorrect token audience",
    )
    assert not TemporaryCredential.objects.exists()


def test_it_refuses_a_subject_the_trust_policy_does_not_name(idp, idp_provider, deployer):
    token = idp.id_token("mallory")

    with pytest.raises(AccessDenied) as excinfo:
        assume(deployer, token)

    assert excinfo.value.message == "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    event = rejection()
    assert event.error_code == "AccessDenied"
    assert event.request_parameters["Subject"] == "mallory"
    assert event.actor_arn == idp_provider.arn
    assert not TemporaryCredential.objects.exists()


def test_it_refuses_session_tags_unless_the_trust_policy_allows_tag_session(
    account, root_actor, idp, idp_provider
):
    role = services.create_role(
        account=account,
        role_name="NoTags",
        assume_role_policy_document=trust_policy(idp_provider.arn, idp_provider.host_and_path),
        actor=root_actor,
    )
    # Alice's token carries session tags; this trust policy does not allow sts:TagSession.
    with pytest.raises(AccessDenied):
        assume(role, idp.id_token("alice"))


def test_it_matches_conditions_on_session_tag_claims(account, root_actor, idp, idp_provider):
    host = idp_provider.host_and_path
    policy = json.loads(trust_policy(idp_provider.arn, host, tags=True))
    policy["Statement"][0]["Condition"]["StringEquals"]["aws:RequestTag/team"] = "finance"
    role = services.create_role(
        account=account,
        role_name="FinanceOnly",
        assume_role_policy_document=json.dumps(policy),
        actor=root_actor,
    )
    with pytest.raises(AccessDenied):
        assume(role, idp.id_token("alice"))


def test_it_matches_conditions_on_amr(account, root_actor, idp, idp_provider):
    host = idp_provider.host_and_path
    policy = json.loads(trust_policy(idp_provider.arn, host, tags=True))
    policy["Statement"][0]["Condition"]["ForAnyValue:StringEquals"] = {f"{host}:amr": "mfa"}
    role = services.create_role(
        account=account,
        role_name="MfaOnly",
        assume_role_policy_document=json.dumps(policy),
        actor=root_actor,
    )
    with pytest.raises(AccessDenied):
        assume(role, idp.id_token("alice"))
    assert assume(role, idp.id_token("alice", otp=idp.test_otp)).credential.mfa_authenticated


def test_it_refuses_a_duration_beyond_the_roles_maximum(idp, deployer):
    from identity.errors import ValidationError

    with pytest.raises(ValidationError) as excinfo:
        assume(deployer, idp.id_token("alice"), duration_seconds=7201)
    assert excinfo.value.message == (
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    )


def test_it_refuses_an_issuer_the_account_does_not_trust(account, root_actor, idp, rogue_issuer):
    role = services.create_role(
        account=account,
        role_name="Deployer",
        assume_role_policy_document=trust_policy(
            "arn:aws:iam::111111111111:oidc-provider/127.0.0.1", "127.0.0.1"
        ),
        actor=root_actor,
    )
    token = rogue_issuer.sign({"sub": "alice", "aud": "portcullis-console"})

    with pytest.raises(federation.InvalidIdentityToken) as excinfo:
        assume(role, token)

    assert excinfo.value.message == (
        f"No OpenIDConnect provider found in your account for {rogue_issuer.issuer}"
    )
    assert rejection().error_message == excinfo.value.message


@pytest.fixture
def rogue_role(account, root_actor, rogue_issuer):
    provider = create_provider(account, rogue_issuer.issuer, root_actor)
    return services.create_role(
        account=account,
        role_name="Rogue",
        assume_role_policy_document=trust_policy(provider.arn, provider.host_and_path),
        actor=root_actor,
    )


def test_it_accepts_a_well_signed_token_from_the_test_issuer(rogue_issuer, rogue_role):
    token = rogue_issuer.sign({"sub": "alice", "aud": "portcullis-console"})
    assert assume(rogue_role, token).credential.federated_subject == "alice"


def test_it_refuses_an_expired_token(rogue_issuer, rogue_role):
    now = int(time.time())
    token = rogue_issuer.sign(
        {"sub": "alice", "aud": "portcullis-console", "iat": now - 900, "exp": now - 120}
    )

    with pytest.raises(federation.ExpiredTokenException) as excinfo:
        assume(rogue_role, token)

    assert excinfo.value.message.startswith("Token expired: current date/time ")
    assert "must be before the expiration date/time" in excinfo.value.message
    assert rejection().error_code == "ExpiredTokenException"


def test_it_allows_sixty_seconds_of_clock_skew_and_no_more(rogue_issuer, rogue_role):
    now = int(time.time())
    assume(
        rogue_role,
        rogue_issuer.sign({"sub": "alice", "aud": "portcullis-console", "exp": now - 30}),
    )
    with pytest.raises(federation.InvalidIdentityToken) as excinfo:
        assume(
            rogue_role,
            rogue_issuer.sign({"sub": "alice", "aud": "portcullis-console", "iat": now + 300}),
        )
    assert excinfo.value.message == (
        "The web identity token is not valid yet (its iat or nbf is in the future)."
    )


def test_it_refuses_a_signature_by_another_key(rogue_issuer, rogue_role):
    token = rogue_issuer.sign({"sub": "alice", "aud": "portcullis-console"}, key=new_rsa_key())

    with pytest.raises(federation.InvalidIdentityToken) as excinfo:
        assume(rogue_role, token)

    assert excinfo.value.message == (
        f"The web identity token's signature does not verify with {rogue_issuer.issuer}'s key "
        "rogue-1."
    )
    assert rejection().error_code == "InvalidIdentityToken"


def test_it_refuses_alg_none(rogue_issuer, rogue_role):
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": rogue_issuer.issuer,
            "sub": "alice",
            "aud": "portcullis-console",
            "iat": now,
            "exp": now + 600,
        },
        key=None,
        algorithm="none",
    )

    with pytest.raises(federation.InvalidIdentityToken) as excinfo:
        assume(rogue_role, token)

    assert excinfo.value.message == (
        "The web identity token is unsigned (alg none); only signed ID tokens are accepted."
    )
    assert rejection().error_message == excinfo.value.message


def test_it_refuses_hmac_signed_with_the_public_key(rogue_issuer, rogue_role):
    # The classic confusion attack: HS256 keyed with the provider's public key.
    token = jwt.encode(
        {
            "iss": rogue_issuer.issuer,
            "sub": "alice",
            "aud": "portcullis-console",
            "iat": int(time.time()),
            "exp": int(time.time()) + 600,
        },
        key="a-shared-secret-anyone-could-know-0123456789",
        algorithm="HS256",
        headers={"kid": "rogue-1"},
    )
    with pytest.raises(federation.InvalidIdentityToken) as excinfo:
        assume(rogue_role, token)
    assert "shared-secret algorithm" in excinfo.value.message


def test_it_refuses_an_algorithm_the_provider_does_not_advertise(rogue_issuer, rogue_role):
    token = rogue_issuer.sign({"sub": "alice", "aud": "portcullis-console"}, alg="RS512")
    with pytest.raises(federation.InvalidIdentityToken) as excinfo:
        assume(rogue_role, token)
    assert excinfo.value.message == (
        f"The web identity token is signed with RS512, which {rogue_issuer.issuer} does not "
        "advertise (id_token_signing_alg_values_supported: RS256)."
    )


def test_it_fetches_rotated_keys_on_an_unknown_kid_at_most_once_per_interval(
    rogue_issuer, rogue_role
):
    from django.core.cache import cache

    assume(rogue_role, rogue_issuer.sign({"sub": "alice", "aud": "portcullis-console"}))
    cache.clear()
    new_key = new_rsa_key()
    rogue_issuer.publish(new_key, "rogue-2")
    fetches_before = len(rogue_issuer.fetches)

    token = rogue_issuer.sign(
        {"sub": "alice", "aud": "portcullis-console"}, key=new_key, kid="rogue-2"
    )
    assume(rogue_role, token)
    assert len(rogue_issuer.fetches) == fetches_before + 2  # discovery + JWKS

    forged = rogue_issuer.sign({"sub": "alice", "aud": "portcullis-console"}, kid="rogue-9")
    for _ in range(3):
        with pytest.raises(federation.InvalidIdentityToken):
            assume(rogue_role, forged)
    # The first unknown kid inside the interval was already spent by rogue-2's refresh.
    assert len(rogue_issuer.fetches) == fetches_before + 2
