"""An administrator looks after a user's sign-in in Debian's Chromium, as a person would: from
the console's user page to the console access page, unlock, reset the password (read from the
page, shown once) and the user's first sign-in with it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Browser

from audit.models import AuditEvent
from identity import signin
from identity.models import User
from tests.browser import chromium
from tests.signin.conftest import ALICE_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    with chromium(monkeypatch) as launched:
        yield launched


def test_it_walks_an_administrator_through_unlock_and_password_reset(
    live_server, account, alice, browser
):
    base = live_server.url
    User.objects.filter(pk=alice.pk).update(
        failed_signin_count=10, locked_until=signin.now() + timedelta(minutes=30)
    )
    admin = browser.new_context().new_page()

    admin.goto(f"{base}/signin/root/")
    admin.get_by_label("Root user email address").fill("root@alice.example")
    admin.get_by_label("Password").fill("Root-password-1!")
    admin.get_by_role("button", name="Sign in").click()
    admin.wait_for_url(f"{base}/")
    admin.goto(f"{base}/users/alice/?tab=credentials")
    admin.get_by_role("link", name=re.compile("Manage console access")).click()
    admin.wait_for_url(re.compile(r"/users/alice/console-access/$"))
    assert "Locked after 10 failed sign-ins" in admin.content()

    admin.get_by_role("button", name="Unlock alice").click()
    admin.wait_for_url(re.compile(r"/users/alice/console-access/$"))
    assert "alice is unlocked and may sign in again." in admin.content()

    admin.get_by_role("button", name="Reset password").click()
    generated = admin.get_by_label("Password").input_value()
    assert generated != ALICE_PASSWORD
    assert len(generated) >= 20
    admin.get_by_role("link", name="Done").click()
    assert generated not in admin.content()
    assert "Must be changed at the next sign-in." in admin.content()

    person = browser.new_context().new_page()
    person.goto(f"{base}/signin/")
    person.get_by_label("Account ID (12 digits) or account alias").fill("111111111111")
    person.get_by_label("IAM user name").fill("alice")
    person.get_by_label("Password").fill(generated)
    person.get_by_role("button", name="Sign in").click()
    person.wait_for_url(re.compile(r"/my/password/$"))
    assert list(
        AuditEvent.objects.filter(action__in=["portcullis:UnlockUser", "iam:UpdateLoginProfile"])
        .order_by("id")
        .values_list("action", "actor_arn")
    ) == [
        ("portcullis:UnlockUser", "arn:aws:iam::111111111111:root"),
        ("iam:UpdateLoginProfile", "arn:aws:iam::111111111111:root"),
    ]
