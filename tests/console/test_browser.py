"""An administrator's walk through the console in Chromium (Playwright, Debian's Chromium).

The new user signs in through the real sign-in page (account, user name, the console
password the administrator gave them). The administrator, who has no password in this cast,
starts with a session made by ``Client.force_login``. The credential report's task runs
in-process through the same function the Celery task calls (no worker in this test).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from console import reports
from console.models import CredentialReport
from identity.models import User
from identity.request_context import (
    AUTHENTICATED_AT_SESSION_KEY,
    MFA_AUTHENTICATED_AT_SESSION_KEY,
)
from tests.browser import chromium

pytestmark = [pytest.mark.browser, pytest.mark.live]


def session_cookie(user: User, live_server) -> dict:
    client = Client()
    client.force_login(user)
    session = client.session
    now = datetime.now(UTC).isoformat()
    session[AUTHENTICATED_AT_SESSION_KEY] = now
    session[MFA_AUTHENTICATED_AT_SESSION_KEY] = now
    session.save()
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": session.session_key,
        "url": live_server.url,
    }


@pytest.fixture
def browser(monkeypatch):
    with chromium(monkeypatch) as launched:
        yield launched


def test_it_walks_an_administrator_through_the_console(
    transactional_db, live_server, browser, account, admin, objects
):
    base = live_server.url
    admin_ctx = browser.new_context(accept_downloads=True)
    admin_ctx.add_cookies([session_cookie(admin, live_server)])
    page = admin_ctx.new_page()

    # A group with a policy.
    page.goto(f"{base}/groups/create/")
    page.get_by_label("Group name").fill("readers")
    page.get_by_label("Managed policy ARNs to attach (one per line)").fill(
        "arn:aws:iam::aws:policy/IAMReadOnlyAccess"
    )
    page.get_by_role("button", name="Create group").click()
    page.wait_for_url(re.compile(r"/groups/readers/$"))
    assert page.get_by_role("link", name="IAMReadOnlyAccess").is_visible()

    # A user in it, with a console password.
    page.goto(f"{base}/users/create/")
    page.get_by_label("User name").fill("walker")
    page.get_by_label("Console password").fill("A-long-enough-passphrase-7")
    page.get_by_label("readers").check()
    page.get_by_role("button", name="Create user").click()
    page.wait_for_url(re.compile(r"/users/walker/$"))
    walker = User.objects.get(account=account, name="walker")
    assert walker.has_login_profile

    # An inline policy of the user, in the same validated editor.
    page.get_by_role("link", name="Add inline policy").click()
    page.get_by_label("Policy name").fill("ReadOwnUser")
    page.get_by_label("Policy document (JSON)").fill(
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:GetUser",'
        ' "Resource": "arn:aws:iam::111111111111:user/walker"}]}'
    )
    page.locator("#findings .decision-allowed").wait_for()  # checked live: no findings
    page.get_by_role("button", name="Save inline policy").click()
    page.wait_for_url(re.compile(r"/users/walker/\?tab=permissions$"))
    assert "ReadOwnUser" in page.locator("#inline-policies").inner_text()

    # The user signs in on the sign-in page, then sees what IAMReadOnlyAccess allows, and
    # AWS's 403 for what it does not.
    user_ctx = browser.new_context()
    as_walker = user_ctx.new_page()
    as_walker.goto(f"{base}/users/")
    as_walker.wait_for_url(re.compile(r"/signin/"))
    as_walker.get_by_label("Account ID (12 digits) or account alias").fill(account.id)
    as_walker.get_by_label("IAM user name").fill("walker")
    as_walker.get_by_label("Password").fill("A-long-enough-passphrase-7")
    as_walker.get_by_role("button", name="Sign in").click()
    as_walker.wait_for_url(re.compile(r"/users/$"))
    assert as_walker.locator(".who").first.inner_text() == ("arn:aws:iam::111111111111:user/walker")
    assert as_walker.get_by_role("heading", name="Users").is_visible()
    nav = as_walker.get_by_role("navigation", name="Console")
    assert nav.get_by_role("link", name="Users").is_visible()
    assert nav.get_by_role("link", name="Audit trail").count() == 0
    assert as_walker.get_by_role("link", name="Create user").count() == 0
    response = as_walker.goto(f"{base}/audit/")
    assert response.status == 403
    assert as_walker.locator("#access-denied").inner_text() == (
        "User: arn:aws:iam::111111111111:user/walker is not authorized to perform: "
        "cloudtrail:LookupEvents on resource: * because no identity-based policy allows the "
        "cloudtrail:LookupEvents action"
    )
    user_ctx.close()

    # Edit a policy: a validation error shows at its line and nothing is saved.
    policy_arn = objects["policy"].arn
    page.goto(f"{base}/policies/edit/{policy_arn}")
    editor = page.get_by_label("Policy document (JSON)")
    editor.fill(
        '{\n  "Version": "2012-10-17",\n  "Statement": [\n'
        '    {"Effect": "Maybe", "Action": "iam:ListUsers", "Resource": "*"}\n  ]\n}'
    )
    page.get_by_role("button", name="Save changes").click()
    finding = page.locator('.finding.ERROR[data-line="4"]').first
    finding.wait_for()
    assert "Line 4" in finding.inner_text()

    # Add a version, then roll back to v1.
    editor = page.get_by_label("Policy document (JSON)")
    editor.fill(
        '{\n  "Version": "2012-10-17",\n  "Statement": [\n'
        '    {"Effect": "Allow", "Action": "iam:ListGroups", "Resource": "*"}\n  ]\n}'
    )
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(r"tab=versions"))
    assert "Default" in page.locator("#version-v2").inner_text()
    page.get_by_role("button", name="Set v1 as default").click()
    page.wait_for_url(re.compile(r"tab=versions"))
    assert "Default" in page.locator("#version-v1").inner_text()

    # The simulator.
    page.goto(f"{base}/simulator/")
    page.get_by_label("An IAM user").check()
    page.get_by_label("User, group or role name").fill("walker")
    page.get_by_label("Actions (one per line)").fill("iam:ListUsers\niam:CreateUser")
    page.get_by_role("button", name="Run simulation").click()
    results = page.locator("#simulation-results")
    results.wait_for()
    text = results.inner_text()
    assert "iam:ListUsers" in text
    assert "allowed" in text
    assert "implicitDeny" in text

    # The credential report: generate, the page polls, download.
    page.goto(f"{base}/credential-report/")
    page.get_by_role("button", name="Generate report").click()
    page.wait_for_url(re.compile(r"/credential-report/$"))
    report = CredentialReport.objects.get(account=account)
    reports.build_credential_report(account_id=account.id, generation=report.generation)
    download_link = page.locator("#download-report")
    download_link.wait_for(timeout=10_000)  # htmx polls every 2 s
    with page.expect_download() as info:
        download_link.click()
    content = Path(info.value.path()).read_text(encoding="utf-8")
    assert content.startswith("user,arn,user_creation_time,password_enabled,")
    assert "\n<root_account>,arn:aws:iam::111111111111:root," in content
    assert "\nwalker,arn:aws:iam::111111111111:user/walker," in content
    admin_ctx.close()


def test_it_shows_findings_while_an_iam_full_access_user_types(
    transactional_db, live_server, browser, account, objects
):
    from tests.console.conftest import make_user

    # IAMFullAccess grants iam:* but not access-analyzer:ValidatePolicy: the live check is
    # authorized by iam:CreatePolicyVersion on the policy being edited.
    editor = make_user(account, "editor", "arn:aws:iam::aws:policy/IAMFullAccess")
    context = browser.new_context()
    context.add_cookies([session_cookie(editor, live_server)])
    page = context.new_page()
    page.goto(f"{live_server.url}/policies/edit/{objects['policy'].arn}")
    page.locator("#findings .decision-allowed").wait_for()  # the check on load: no findings

    page.get_by_label("Policy document (JSON)").fill(
        '{\n  "Version": "2012-10-17",\n  "Statement": [\n'
        '    {"Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*",\n'
        '     "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "maybe"}}}\n  ]\n}'
    )

    finding = page.locator('#findings .finding[data-line="5"]').first
    finding.wait_for(timeout=10_000)
    assert "Line 5" in finding.inner_text()
    assert page.url.endswith(objects["policy"].arn)  # nothing was submitted
    context.close()
