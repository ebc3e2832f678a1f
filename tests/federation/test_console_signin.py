"""Federated console sign-in, walked in Chromium: the real provider's sign-in page, the role
choice, the console as the role session, and the refusals a browser can meet."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from audit.context import Actor
from audit.models import AuditEvent
from identity import federation, services
from identity.models import Account, TemporaryCredential
from policies import services as policy_services
from tests.browser import chromium
from tests.federation.conftest import trust_policy

SYSTEM = Actor.system("test")


@pytest.fixture
def company(transactional_db, account, idp):
    """Alice's company: the test provider with console sign-in, a Viewer role that trusts
    Alice (subject "alice") and an Operator role that trusts only Bob."""
    provider = federation.create_open_id_connect_provider(
        account=account,
        url=idp.issuer,
        client_id_list=[idp.client_id],
        console_client_id=idp.client_id,
        console_client_secret=idp.client_secret,
        display_name="Test IdP",
        mfa_claim_satisfies_mfa=True,
        actor=SYSTEM,
    )
    host = provider.host_and_path
    services.create_role(
        account=account,
        role_name="Viewer",
        assume_role_policy_document=trust_policy(provider.arn, host, tags=True),
        max_session_duration=5400,
        actor=SYSTEM,
    )
    policy_services.put_role_policy(
        account=account,
        role_name="Viewer",
        policy_name="look-around",
        policy_document=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["iam:GetAccountSummary", "iam:ListRoles"],
                        "Resource": "*",
                    }
                ],
            }
        ),
        actor=SYSTEM,
    )
    services.create_role(
        account=account,
        role_name="Operator",
        assume_role_policy_document=trust_policy(provider.arn, host, sub="bob", tags=True),
        actor=SYSTEM,
    )
    return provider


@pytest.fixture
def browser_page(monkeypatch):
    with chromium(monkeypatch) as browser:
        page = browser.new_page()
        page.set_default_timeout(15000)
        yield page


def sign_in_at_provider(page, live_server, *, user="alice", otp=""):
    page.goto(f"{live_server.url}/signin/")
    page.click("#signin-oidc")
    page.fill("#oidc-account", "111111111111")
    page.click("text=Next")
    page.click("text=Sign in with Test IdP")
    page.wait_for_load_state()
    if "input" not in page.content() or "/interaction/" not in page.url:
        raise AssertionError(f"not at the provider: {page.url}\n{page.inner_text('body')[:500]}")
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", f"{user}-password-1")
    page.fill("input[name=otp]", otp)
    page.click("button[type=submit]")


@pytest.mark.browser
def test_it_signs_in_through_the_provider_to_a_role_session(
    live_server, idp, company, browser_page
):
    page = browser_page
    callbacks: list[str] = []
    page.on(
        "request", lambda r: callbacks.append(r.url) if "/signin/oidc/callback" in r.url else None
    )

    sign_in_at_provider(page, live_server, otp=idp.test_otp)

    page.wait_for_url("**/signin/oidc/roles/")
    assert "with multi-factor authentication" in page.inner_text("main")
    offered = page.locator("input[name=role] + label").all_inner_texts()
    assert offered == ["Viewer"]
    page.click("text=Sign in as this role")
    page.wait_for_url(f"{live_server.url}/")
    session_arn = "arn:aws:sts::111111111111:assumed-role/Viewer/alice@idp.example"
    assert session_arn in page.inner_text("header")

    credential = TemporaryCredential.objects.get(federated_subject="alice")
    assert credential.federated_provider_arn == company.arn
    assert credential.expires_at - credential.issued_at == timedelta(seconds=5400)
    assert credential.mfa_authenticated
    event = AuditEvent.objects.get(action=federation.CONSOLE_ACTION, result="Success")
    assert event.category == "signin"
    assert event.request_parameters["Subject"] == "alice"
    assert event.after["AssumedRoleUser"]["Arn"] == session_arn

    # The console runs with the role's permissions, as the role session.
    assert page.goto(f"{live_server.url}/roles/").status == 200
    denied = page.goto(f"{live_server.url}/users/")
    assert denied.status == 403
    assert f"User: {session_arn} is not authorized to perform: iam:ListUsers" in page.inner_text(
        "main"
    )

    # The provider's answer cannot be used twice.
    assert len(callbacks) == 1
    replay = page.goto(callbacks[0])
    assert replay.status == 400
    assert page.inner_text("#federation-error") == (
        "This sign-in response was already used or was not started in this browser. "
        "Start the sign-in again."
    )
    refused = AuditEvent.objects.filter(action=federation.CONSOLE_ACTION, result="Failure").latest(
        "id"
    )
    assert refused.error_code == "InvalidIdentityToken"

    # Signing out ends the console session, audited as the role session that signed out.
    page.goto(f"{live_server.url}/roles/")
    page.click("header button:has-text('Sign out')")
    page.wait_for_url(f"{live_server.url}/signin/")
    logout = AuditEvent.objects.get(action="signin:ConsoleLogout")
    assert (logout.actor_kind, logout.actor_arn, logout.access_key_id) == (
        "role_session",
        session_arn,
        credential.access_key_id,
    )
    assert logout.request_parameters["Subject"] == "alice"
    page.goto(f"{live_server.url}/roles/")
    assert "/signin/" in page.url


@pytest.mark.browser
def test_it_offers_no_role_to_a_subject_no_trust_policy_names(
    live_server, idp, company, browser_page
):
    page = browser_page
    sign_in_at_provider(page, live_server, user="mallory")

    page.wait_for_url("**/signin/oidc/roles/")
    assert "No role in this account trusts this identity" in page.inner_text("#federation-error")
    assert not TemporaryCredential.objects.exists()
    # Going to the console is still a trip to sign-in: nothing was granted.
    page.goto(f"{live_server.url}/roles/")
    assert "/signin/" in page.url


@pytest.mark.browser
def test_it_requires_the_providers_mfa_when_the_account_requires_mfa(
    live_server, idp, company, browser_page
):
    Account.objects.filter(pk=company.account_id).update(require_mfa_for_console=True)
    page = browser_page
    sign_in_at_provider(page, live_server, otp="")

    page.wait_for_url("**/signin/oidc/roles/")
    page.click("text=Sign in as this role")
    assert "requires multi-factor authentication for console sign-in" in page.inner_text(
        "#federation-error"
    )
    assert not TemporaryCredential.objects.exists()
    event = AuditEvent.objects.get(action=federation.CONSOLE_ACTION, result="Failure")
    assert event.error_code == "AccessDenied"
