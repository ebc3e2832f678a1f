"""OIDC identity providers as IAM models them: the CreateOpenIDConnectProvider family."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from identity import federation
from identity.errors import (
    EntityAlreadyExists,
    InvalidInput,
    LimitExceeded,
    NoSuchEntity,
    ValidationError,
)
from identity.models import OIDCProvider
from identity.tasks import fetch_oidc_provider_keys

THUMB = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"


def test_it_creates_a_provider_with_an_iam_arn_and_audits_it(account, root_actor):
    provider = federation.create_open_id_connect_provider(
        account=account,
        url="https://idp.example.com/tenant-1",
        client_id_list=["app-1", "app-2", "app-1"],
        thumbprint_list=[THUMB.upper()],
        tags=[{"Key": "team", "Value": "platform"}],
        actor=root_actor,
    )

    assert provider.arn == "arn:aws:iam::111111111111:oidc-provider/idp.example.com/tenant-1"
    assert provider.client_ids == ["app-1", "app-2"]
    assert provider.thumbprints == [THUMB]
    event = AuditEvent.objects.get(action="iam:CreateOpenIDConnectProvider")
    assert event.resource_arn == provider.arn
    assert event.after["ClientIDList"] == ["app-1", "app-2"]
    assert federation.get_open_id_connect_provider(account=account, arn=provider.arn) == provider


def test_it_refuses_http_and_queries_and_a_second_registration(account, root_actor):
    with pytest.raises(InvalidInput) as excinfo:
        federation.create_open_id_connect_provider(
            account=account, url="http://idp.example.com", actor=root_actor
        )
    assert excinfo.value.message == (
        "Invalid URL http://idp.example.com: the URL must begin with https://."
    )
    with pytest.raises(InvalidInput):
        federation.create_open_id_connect_provider(
            account=account, url="https://idp.example.com/?tenant=1", actor=root_actor
        )
    federation.create_open_id_connect_provider(
        account=account, url="https://idp.example.com", actor=root_actor
    )
    with pytest.raises(EntityAlreadyExists) as excinfo:
        federation.create_open_id_connect_provider(
            account=account, url="https://idp.example.com", actor=root_actor
        )
    assert excinfo.value.message == "Provider with url https://idp.example.com already exists."
    assert OIDCProvider.objects.filter(account=account).count() == 1


def test_it_validates_thumbprints_and_client_ids_as_iam_does(account, root_actor):
    with pytest.raises(ValidationError):
        federation.create_open_id_connect_provider(
            account=account, url="https://a.example", thumbprint_list=["abc"], actor=root_actor
        )
    with pytest.raises(ValidationError):
        federation.create_open_id_connect_provider(
            account=account, url="https://a.example", thumbprint_list=[THUMB] * 6, actor=root_actor
        )
    with pytest.raises(ValidationError):
        federation.create_open_id_connect_provider(
            account=account, url="https://a.example", client_id_list=["x" * 256], actor=root_actor
        )
    with pytest.raises(LimitExceeded) as excinfo:
        federation.create_open_id_connect_provider(
            account=account,
            url="https://a.example",
            client_id_list=[f"c{i}" for i in range(101)],
            actor=root_actor,
        )
    assert excinfo.value.message == "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100"
    assert not OIDCProvider.objects.exists()


def test_it_enforces_the_quota_of_100_providers_per_account(account, root_actor):
    for i in range(100):
        OIDCProvider.objects.create(account=account, url=f"https://idp{i}.example")

    with pytest.raises(LimitExceeded) as excinfo:
        federation.create_open_id_connect_provider(
            account=account, url="https://one-too-many.example", actor=root_actor
        )
    assert excinfo.value.message == "Cannot exceed quota for OpenIdConnectProvidersPerAccount: 100"


def test_it_adds_and_removes_client_ids_idempotently_and_replaces_thumbprints(account, root_actor):
    provider = federation.create_open_id_connect_provider(
        account=account, url="https://idp.example.com", client_id_list=["a"], actor=root_actor
    )
    arn = provider.arn

    federation.add_client_id_to_open_id_connect_provider(
        account=account, arn=arn, client_id="b", actor=root_actor
    )
    federation.add_client_id_to_open_id_connect_provider(
        account=account, arn=arn, client_id="b", actor=root_actor
    )
    federation.remove_client_id_from_open_id_connect_provider(
        account=account, arn=arn, client_id="a", actor=root_actor
    )
    federation.remove_client_id_from_open_id_connect_provider(
        account=account, arn=arn, client_id="zzz", actor=root_actor
    )
    updated = federation.update_open_id_connect_provider_thumbprint(
        account=account, arn=arn, thumbprint_list=[THUMB], actor=root_actor
    )

    assert updated.client_ids == ["b"]
    assert updated.thumbprints == [THUMB]
    assert AuditEvent.objects.filter(action="iam:AddClientIDToOpenIDConnectProvider").count() == 2


def test_it_tags_untags_and_deletes_idempotently(account, root_actor):
    provider = federation.create_open_id_connect_provider(
        account=account, url="https://idp.example.com", actor=root_actor
    )
    federation.tag_open_id_connect_provider(
        account=account, arn=provider.arn, tags=[{"Key": "a", "Value": "1"}], actor=root_actor
    )
    tagged = federation.untag_open_id_connect_provider(
        account=account, arn=provider.arn, tag_keys=["A"], actor=root_actor
    )
    assert tagged.tags == []

    federation.delete_open_id_connect_provider(account=account, arn=provider.arn, actor=root_actor)
    federation.delete_open_id_connect_provider(account=account, arn=provider.arn, actor=root_actor)

    assert AuditEvent.objects.filter(action="iam:DeleteOpenIDConnectProvider").count() == 1
    with pytest.raises(NoSuchEntity) as excinfo:
        federation.get_open_id_connect_provider(account=account, arn=provider.arn)
    assert excinfo.value.message == f"OpenIDConnect Provider not found for arn {provider.arn}"


def test_it_hides_another_accounts_provider(account, other_account, root_actor):
    provider = federation.create_open_id_connect_provider(
        account=other_account, url="https://idp.example.com", actor=root_actor
    )
    with pytest.raises(NoSuchEntity):
        federation.get_open_id_connect_provider(account=account, arn=provider.arn)


def test_it_fetches_discovery_and_keys_in_a_task_and_keeps_them_when_the_provider_is_down(
    account, root_actor, rogue_issuer
):
    provider = federation.create_open_id_connect_provider(
        account=account, url=rogue_issuer.issuer, actor=root_actor
    )

    assert fetch_oidc_provider_keys.apply(args=[provider.pk]).get() is True
    provider.refresh_from_db()
    assert provider.jwks["keys"][0]["kid"] == "rogue-1"
    assert provider.discovery_document["issuer"] == rogue_issuer.issuer
    fetched_at = provider.jwks_fetched_at

    # The provider goes away: the task fails, says why, and the cached keys stay.
    OIDCProvider.objects.filter(pk=provider.pk).update(url="http://127.0.0.1:9")
    assert fetch_oidc_provider_keys.apply(args=[provider.pk]).get() is False
    provider.refresh_from_db()
    assert provider.jwks["keys"][0]["kid"] == "rogue-1"
    assert provider.jwks_fetched_at == fetched_at
    assert "could not be reached" in provider.jwks_fetch_error


def test_it_refuses_a_discovery_document_for_another_issuer(account, root_actor, rogue_issuer):
    provider = federation.create_open_id_connect_provider(
        account=account, url=rogue_issuer.issuer + "/tenant", actor=root_actor
    )
    assert federation.refresh_oidc_provider_keys(provider_id=provider.pk) is False
    provider.refresh_from_db()
    assert provider.jwks == {}
    assert "404" in provider.jwks_fetch_error


def test_it_never_replaces_keys_stored_by_a_fetch_that_started_later(
    account, root_actor, rogue_issuer
):
    # Overlapping fetches (a redelivered task, the beat, an unknown kid): a slower fetch that
    # started earlier finishes last, and must not put its older documents over newer ones.
    provider = federation.create_open_id_connect_provider(
        account=account, url=rogue_issuer.issuer, actor=root_actor
    )
    later = timezone.now() + timedelta(seconds=5)
    OIDCProvider.objects.filter(pk=provider.pk).update(
        jwks={"keys": [{"kid": "newer", "kty": "RSA"}]}, jwks_fetched_at=later
    )

    assert federation.refresh_oidc_provider_keys(provider_id=provider.pk) is True

    provider.refresh_from_db()
    assert provider.jwks == {"keys": [{"kid": "newer", "kty": "RSA"}]}
    assert provider.jwks_fetched_at == later
    assert rogue_issuer.fetches == ["/.well-known/openid-configuration", "/jwks"]


def test_it_refuses_more_than_50_untag_keys_like_every_other_entity(account, root_actor):
    provider = federation.create_open_id_connect_provider(
        account=account, url="https://idp.example.com", actor=root_actor
    )

    with pytest.raises(ValidationError) as excinfo:
        federation.untag_open_id_connect_provider(
            account=account,
            arn=provider.arn,
            tag_keys=[f"k{i}" for i in range(51)],
            actor=root_actor,
        )

    assert excinfo.value.message.endswith(
        "at 'tagKeys' failed to satisfy constraint: "
        "Member must have length less than or equal to 50"
    )
    assert not AuditEvent.objects.filter(action="iam:UntagOpenIDConnectProvider").exists()
