"""The identity providers' console pages (/identity-providers/), each authorized through the
engine with its IAM action, walked with the permission matrix:

- anonymous visitors go to sign-in;
- ``nobody`` (an IAM user of Alice's company without any policy) gets AWS's 403 and changes
  nothing;
- ``outsider`` (an administrator of the other company) gets a 404 for Alice's provider;
- ``operator`` (a user of Alice's company whose one policy allows exactly the page's action on
  exactly the provider) gets the page, the change happens, and the audit trail says who did it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, reverse

from audit.models import AuditEvent
from console.access import DeclaredAction
from identity import federation_urls
from identity.models import OIDCProvider
from policies import services as policy_services
from tests.conftest import actor_for
from tests.console.conftest import ADMIN, make_user, sign_in
from tests.federation.conftest import create_provider

THUMB = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"


@dataclass(frozen=True)
class Page:
    name: str
    method: str
    action: str
    on_provider: bool  # the resource is the provider's ARN (else the page's own resource)
    data: dict[str, str] | None = None


PAGES = [
    Page("providers", "get", "iam:ListOpenIDConnectProviders", False),
    Page("provider_create", "get", "iam:CreateOpenIDConnectProvider", False),
    Page("provider", "get", "iam:GetOpenIDConnectProvider", True),
    Page(
        "add_client", "post", "iam:AddClientIDToOpenIDConnectProvider", True, {"client_id": "cli"}
    ),
    Page(
        "remove_client",
        "post",
        "iam:RemoveClientIDFromOpenIDConnectProvider",
        True,
        {"client_id": "portcullis-console"},
    ),
    Page(
        "thumbprints",
        "post",
        "iam:UpdateOpenIDConnectProviderThumbprint",
        True,
        {"thumbprints": THUMB},
    ),
    Page("refresh_keys", "post", "iam:GetOpenIDConnectProvider", True, {}),
    Page("delete", "post", "iam:DeleteOpenIDConnectProvider", True, {}),
]
PAGE_IDS = [p.name for p in PAGES]


@pytest.fixture
def alice_provider(account, root_actor, rogue_issuer) -> OIDCProvider:
    """Alice's company trusts the test's issuer (reachable, so fetching keys works)."""
    return create_provider(account, rogue_issuer.issuer, root_actor)


def url(page: Page, provider: OIDCProvider) -> str:
    args = [provider.pk] if page.on_provider else []
    return reverse(f"federation:{page.name}", args=args)


def resource(page: Page, provider: Any) -> str:
    if page.on_provider:
        return provider.arn
    if page.action == "iam:ListOpenIDConnectProviders":
        return "*"
    return "arn:aws:iam::111111111111:oidc-provider/*"


def visit(client: Any, page: Page, provider: OIDCProvider) -> Any:
    if page.method == "post":
        return client.post(url(page, provider), page.data or {})
    return client.get(url(page, provider))


def allowed_only(account: Any, name: str, action: str, arn: str) -> Any:
    """A user whose only policy allows ``action`` on ``arn``."""
    user = make_user(account, name)
    policy_services.put_user_policy(
        account=account,
        user_name=name,
        policy_name="just-this",
        policy_document=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": action, "Resource": arn}],
            }
        ),
        actor=actor_for(user.account.users.get(is_root=True)),
    )
    return user


def snapshot(provider: OIDCProvider) -> dict[str, Any] | None:
    fresh = OIDCProvider.objects.filter(pk=provider.pk).first()
    if fresh is None:
        return None
    return {
        "client_ids": fresh.client_ids,
        "thumbprints": fresh.thumbprints,
        "jwks": fresh.jwks,
        "fetched": fresh.jwks_fetched_at,
    }


def test_it_declares_an_iam_action_on_every_provider_page():
    patterns = [p for p in federation_urls.urlpatterns if isinstance(p, URLPattern)]
    declared = {
        p.name: p.callback.console_action.action
        for p in patterns
        if isinstance(getattr(p.callback, "console_action", None), DeclaredAction)
    }
    # Every page is in the matrix below, with the action it declares.
    assert declared == {p.name: p.action for p in PAGES}


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_it_sends_anonymous_visitors_to_sign_in(client, alice_provider, page):
    before = snapshot(alice_provider)

    response = visit(client, page, alice_provider)

    assert response.status_code == 302
    assert response["Location"].startswith("/signin/")
    assert snapshot(alice_provider) == before


@pytest.mark.django_db
@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_it_refuses_a_user_without_a_policy_with_aws_message(client, account, alice_provider, page):
    sign_in(client, make_user(account, "nobody"))
    before = snapshot(alice_provider)
    events = AuditEvent.objects.count()

    response = visit(client, page, alice_provider)

    assert response.status_code == 403
    assert (
        f"User: arn:aws:iam::111111111111:user/nobody is not authorized to perform: "
        f"{page.action} on resource: {resource(page, alice_provider)} because no "
        f"identity-based policy allows the {page.action} action"
    ) in response.content.decode()
    assert snapshot(alice_provider) == before
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db
@pytest.mark.parametrize("page", [p for p in PAGES if p.on_provider], ids=lambda p: p.name)
def test_it_hides_alices_provider_from_another_accounts_administrator(
    client, other_account, alice_provider, page
):
    sign_in(client, make_user(other_account, "outsider", ADMIN))
    before = snapshot(alice_provider)

    response = visit(client, page, alice_provider)

    assert response.status_code == 404
    assert snapshot(alice_provider) == before
    assert not AuditEvent.objects.filter(actor_arn__endswith=":user/outsider").exists()


@pytest.mark.django_db
def test_it_lists_only_the_signed_in_accounts_providers(client, other_account, alice_provider):
    sign_in(client, make_user(other_account, "outsider", ADMIN))

    response = client.get(reverse("federation:providers"))

    assert response.status_code == 200
    assert alice_provider.host_and_path not in response.content.decode()
    assert "No identity providers." in response.content.decode()


def operator_for(page: Page, account: Any, provider: Any) -> Any:
    return allowed_only(account, "operator", page.action, resource(page, provider))


def audit_by_operator(action: str) -> AuditEvent:
    return AuditEvent.objects.get(
        action=action, actor_arn="arn:aws:iam::111111111111:user/operator", actor_kind="user"
    )


@pytest.mark.django_db
def test_it_lists_providers_for_a_user_allowed_to(client, account, alice_provider):
    page = PAGES[0]
    sign_in(client, operator_for(page, account, alice_provider))

    response = visit(client, page, alice_provider)

    assert response.status_code == 200
    assert alice_provider.host_and_path in response.content.decode()


@pytest.mark.django_db
def test_it_shows_a_provider_to_a_user_allowed_to(client, account, alice_provider):
    page = PAGES[2]
    sign_in(client, operator_for(page, account, alice_provider))

    response = visit(client, page, alice_provider)

    assert response.status_code == 200
    assert alice_provider.arn in response.content.decode()


@pytest.mark.django_db
def test_it_creates_a_provider_for_a_user_allowed_to(client, account):
    new_arn = "arn:aws:iam::111111111111:oidc-provider/idp.example.org/tenant"
    sign_in(client, operator_for(PAGES[1], account, None))
    assert client.get(reverse("federation:provider_create")).status_code == 200

    response = client.post(
        reverse("federation:provider_create"),
        {
            "url": "https://idp.example.org/tenant",
            "client_ids": "app-1\napp-2",
            "thumbprints": THUMB,
            "display_name": "Example",
        },
    )

    provider = OIDCProvider.objects.get(account=account)
    assert response.status_code == 302
    assert response["Location"] == reverse("federation:provider", args=[provider.pk])
    assert provider.arn == new_arn
    assert provider.client_ids == ["app-1", "app-2"]
    event = audit_by_operator("iam:CreateOpenIDConnectProvider")
    assert event.resource_arn == new_arn
    assert event.after["ClientIDList"] == ["app-1", "app-2"]


@pytest.mark.django_db
def test_it_refuses_to_create_a_provider_at_an_internal_address(client, account, settings):
    settings.OIDC_ALLOW_LOOPBACK_HTTP = False
    sign_in(client, make_user(account, "admin", ADMIN))

    response = client.post(
        reverse("federation:provider_create"), {"url": "https://169.254.169.254/"}
    )

    assert response.status_code == 400
    assert (
        "InvalidInput: Invalid URL https://169.254.169.254/: 169.254.169.254 is a link-local "
        "address; an identity provider must be reachable at a public address."
    ) in response.content.decode()
    assert not OIDCProvider.objects.exists()


@pytest.mark.django_db
def test_it_adds_and_removes_a_client_id_for_users_allowed_to(client, account, alice_provider):
    sign_in(client, operator_for(PAGES[3], account, alice_provider))

    response = visit(client, PAGES[3], alice_provider)

    assert response.status_code == 302
    alice_provider.refresh_from_db()
    assert alice_provider.client_ids == ["portcullis-console", "cli"]
    assert audit_by_operator("iam:AddClientIDToOpenIDConnectProvider").after["ClientIDList"] == [
        "portcullis-console",
        "cli",
    ]
    # The same user may not remove one: that is another action.
    assert visit(client, PAGES[4], alice_provider).status_code == 403

    client.logout()
    remover = allowed_only(
        account, "remover", "iam:RemoveClientIDFromOpenIDConnectProvider", alice_provider.arn
    )
    sign_in(client, remover)
    assert visit(client, PAGES[4], alice_provider).status_code == 302
    alice_provider.refresh_from_db()
    assert alice_provider.client_ids == ["cli"]
    event = AuditEvent.objects.get(action="iam:RemoveClientIDFromOpenIDConnectProvider")
    assert event.actor_arn == "arn:aws:iam::111111111111:user/remover"
    assert event.before["ClientIDList"] == ["portcullis-console", "cli"]


@pytest.mark.django_db
def test_it_updates_thumbprints_for_a_user_allowed_to(client, account, alice_provider):
    page = PAGES[5]
    sign_in(client, operator_for(page, account, alice_provider))

    response = visit(client, page, alice_provider)

    assert response.status_code == 302
    alice_provider.refresh_from_db()
    assert alice_provider.thumbprints == [THUMB]
    event = audit_by_operator("iam:UpdateOpenIDConnectProviderThumbprint")
    assert (event.before["ThumbprintList"], event.after["ThumbprintList"]) == ([], [THUMB])

    response = client.post(
        url(page, alice_provider), {"thumbprints": "not-a-thumbprint"}, follow=True
    )
    assert "ValidationError: 1 validation error detected: Value &#x27;not-a-thumbprint&#x27;" in (
        response.content.decode()
    )
    alice_provider.refresh_from_db()
    assert alice_provider.thumbprints == [THUMB]


@pytest.mark.django_db
def test_it_fetches_keys_for_a_user_allowed_to_read_the_provider(
    client, account, alice_provider, rogue_issuer
):
    page = PAGES[6]
    sign_in(client, operator_for(page, account, alice_provider))

    response = visit(client, page, alice_provider)

    assert response.status_code == 302
    alice_provider.refresh_from_db()
    assert [k["kid"] for k in alice_provider.jwks["keys"]] == ["rogue-1"]
    event = audit_by_operator("portcullis:FetchOpenIDConnectProviderKeys")
    assert (event.result, event.after) == ("Success", {"KeyIds": ["rogue-1"]})
    assert "rogue-1" in client.get(url(PAGES[2], alice_provider)).content.decode()


@pytest.mark.django_db
def test_it_audits_a_key_fetch_that_failed_and_keeps_the_old_keys(
    client, account, alice_provider, rogue_issuer
):
    sign_in(client, make_user(account, "admin", ADMIN))
    visit(client, PAGES[6], alice_provider)
    rogue_issuer.redirects["/jwks"] = "https://10.0.0.1/jwks"

    response = client.post(url(PAGES[6], alice_provider), follow=True)

    reason = (
        f"{rogue_issuer.issuer}/jwks redirected to https://10.0.0.1/jwks, which is refused: "
        "Invalid URL https://10.0.0.1/jwks: 10.0.0.1 is a private address; an identity "
        "provider must be reachable at a public address."
    )
    assert f"Could not fetch the keys: {reason}" in response.content.decode()
    failed = AuditEvent.objects.get(
        action="portcullis:FetchOpenIDConnectProviderKeys", result="Failure"
    )
    assert (failed.error_code, failed.error_message) == ("IDPCommunicationError", reason)
    alice_provider.refresh_from_db()
    assert [k["kid"] for k in alice_provider.jwks["keys"]] == ["rogue-1"]


@pytest.mark.django_db
def test_it_deletes_a_provider_for_a_user_allowed_to_and_only_that_one(
    client, account, root_actor, alice_provider
):
    other = create_provider(account, "https://idp.example.net", root_actor)
    page = PAGES[7]
    sign_in(client, operator_for(page, account, alice_provider))

    assert visit(client, page, other).status_code == 403
    response = visit(client, page, alice_provider)

    assert response.status_code == 302
    assert response["Location"] == reverse("federation:providers")
    assert list(OIDCProvider.objects.filter(account=account)) == [other]
    event = audit_by_operator("iam:DeleteOpenIDConnectProvider")
    assert event.resource_arn == alice_provider.arn
    assert event.before["Url"] == alice_provider.url
    # The id now names nothing; a missing provider is authorized on "oidc-provider/*", which
    # this user's policy does not allow, so the answer does not reveal that it is gone.
    assert visit(client, page, alice_provider).status_code == 403
