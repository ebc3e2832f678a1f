"""Portcullis fetches a provider's documents only from public https addresses: a provider URL,
a URL in its discovery document or a redirect cannot make it reach the metadata service, a
loopback port or an internal host (server-side request forgery)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import pytest

from audit.models import AuditEvent
from identity import federation
from identity.errors import InvalidInput
from identity.models import OIDCProvider
from tests.federation.conftest import create_provider

REFUSED_URLS = [
    ("http://idp.example.com", "the URL must begin with https://."),
    ("http://127.0.0.1:8080", "the URL must begin with https://."),
    (
        "https://127.0.0.1",
        "127.0.0.1 is a loopback address; an identity provider must be reachable at a public "
        "address.",
    ),
    (
        "https://localhost:8443/realms/a",
        "localhost is a loopback address; an identity provider must be reachable at a public "
        "address.",
    ),
    (
        "https://169.254.169.254/latest",
        "169.254.169.254 is a link-local address; an identity provider must be reachable at a "
        "public address.",
    ),
    (
        "https://10.0.0.1",
        "10.0.0.1 is a private address; an identity provider must be reachable at a public "
        "address.",
    ),
    (
        "https://[::1]:8443",
        "::1 is a loopback address; an identity provider must be reachable at a public address.",
    ),
    (
        "https://[::ffff:192.168.1.1]",
        "::ffff:192.168.1.1 is a private address; an identity provider must be reachable at a "
        "public address.",
    ),
    (
        "https://[fe80::1]",
        "fe80::1 is a link-local address; an identity provider must be reachable at a public "
        "address.",
    ),
    (
        "https://100.64.0.1",
        "100.64.0.1 is a non-public address; an identity provider must be reachable at a "
        "public address.",
    ),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED_URLS)
def test_it_refuses_provider_urls_that_are_not_public_https(
    account, root_actor, settings, url, reason
):
    settings.OIDC_ALLOW_LOOPBACK_HTTP = False

    with pytest.raises(InvalidInput) as excinfo:
        create_provider(account, url, root_actor)

    assert excinfo.value.message == f"Invalid URL {url}: {reason}"
    assert not OIDCProvider.objects.exists()
    assert not AuditEvent.objects.filter(action="iam:CreateOpenIDConnectProvider").exists()


def test_it_allows_loopback_only_when_the_test_setting_says_so(settings):
    settings.OIDC_ALLOW_LOOPBACK_HTTP = True
    federation.check_fetchable_url("http://127.0.0.1:8080")
    federation.check_fetchable_url("https://localhost:8443")
    with pytest.raises(InvalidInput) as excinfo:
        federation.check_fetchable_url("https://10.0.0.1")
    assert "10.0.0.1 is a private address" in excinfo.value.message
    with pytest.raises(InvalidInput) as excinfo:
        federation.check_fetchable_url("http://169.254.169.254")
    assert excinfo.value.message.endswith("the URL must begin with https://.")


@dataclass
class ChosenDNS:
    """Answers for names the test chooses (every other name resolves as usual), and every
    address a socket connected to meanwhile."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    connects: list[str] = field(default_factory=list)


@pytest.fixture
def dns(monkeypatch):
    chosen = ChosenDNS()
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in chosen.answers:
            return real_getaddrinfo(host, port, *args, **kwargs)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in chosen.answers[host]
        ]

    def connect(self, address):
        chosen.connects.append(str(address[0]) if isinstance(address, tuple) else str(address))
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return chosen


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["93.184.216.34", "10.0.0.7"], "resolves to 10.0.0.7, a private address"),
        (["169.254.169.254"], "resolves to 169.254.169.254, a link-local address"),
        (["::ffff:127.0.0.1"], "resolves to ::ffff:7f00:1, a loopback address"),
        (["2002:7f00:1::1"], "resolves to 2002:7f00:1::1, a tunnelled address"),
    ],
)
def test_it_refuses_a_host_name_when_any_of_its_addresses_is_internal(
    account, settings, dns, addresses, reason
):
    # The name passed creation (it is not an address); what it resolves to is checked at
    # every fetch, and one internal address among public ones is enough to refuse.
    settings.OIDC_ALLOW_LOOPBACK_HTTP = False
    dns.answers["idp.example.com"] = addresses
    provider = OIDCProvider.objects.create(account=account, url="https://idp.example.com")

    assert federation.refresh_oidc_provider_keys(provider_id=provider.pk) is False

    provider.refresh_from_db()
    assert provider.jwks_fetch_error == (
        "https://idp.example.com/.well-known/openid-configuration was not fetched: "
        f"idp.example.com {reason}; Portcullis does not fetch from private, loopback or "
        "link-local addresses."
    )
    assert provider.jwks == {}
    # Refused before any connection: not even the public address was contacted.
    assert not set(dns.connects) & set(addresses)


def test_it_refuses_a_jwks_uri_at_an_internal_address(account, root_actor, rogue_issuer):
    rogue_issuer.discovery_overrides["jwks_uri"] = "https://10.0.0.1/keys"
    provider = create_provider(account, rogue_issuer.issuer, root_actor)

    assert federation.refresh_oidc_provider_keys(provider_id=provider.pk) is False

    provider.refresh_from_db()
    assert provider.jwks_fetch_error == (
        "Invalid URL https://10.0.0.1/keys: 10.0.0.1 is a private address; an identity provider "
        "must be reachable at a public address."
    )
    assert provider.jwks == {}


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        (
            "https://169.254.169.254/latest/meta-data/",
            "Invalid URL https://169.254.169.254/latest/meta-data/: 169.254.169.254 is a "
            "link-local address; an identity provider must be reachable at a public address.",
        ),
        (
            "http://10.0.0.1/keys",
            "Invalid URL http://10.0.0.1/keys: the URL must begin with https://.",
        ),
    ],
)
def test_it_refuses_a_redirect_to_an_internal_address(
    account, root_actor, rogue_issuer, location, reason
):
    rogue_issuer.discovery_overrides["jwks_uri"] = f"{rogue_issuer.issuer}/moved"
    rogue_issuer.redirects["/moved"] = location
    provider = create_provider(account, rogue_issuer.issuer, root_actor)

    assert federation.refresh_oidc_provider_keys(provider_id=provider.pk) is False

    provider.refresh_from_db()
    assert provider.jwks_fetch_error == (
        f"{rogue_issuer.issuer}/moved redirected to {location}, which is refused: {reason}"
    )
    assert provider.jwks == {}


def test_it_follows_a_redirect_that_stays_at_an_allowed_address(account, root_actor, rogue_issuer):
    rogue_issuer.discovery_overrides["jwks_uri"] = f"{rogue_issuer.issuer}/moved"
    rogue_issuer.redirects["/moved"] = f"{rogue_issuer.issuer}/jwks"
    provider = create_provider(account, rogue_issuer.issuer, root_actor)

    assert federation.refresh_oidc_provider_keys(provider_id=provider.pk) is True

    provider.refresh_from_db()
    assert [k["kid"] for k in provider.jwks["keys"]] == ["rogue-1"]
    assert rogue_issuer.fetches == ["/.well-known/openid-configuration", "/moved", "/jwks"]
