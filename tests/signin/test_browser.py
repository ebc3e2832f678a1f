"""Walkthroughs in Debian's Chromium, as a person would sign in and look after credentials.

The server's clock (``identity.passwords.clock``) is moved forward to cross a lockout, an
idle timeout or a password's maximum age: the live server runs in this process and reads the
same clock, so nothing sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Page

from identity import passwords
from identity.models import User
from tests.browser import chromium
from tests.signin.conftest import ALICE_PASSWORD, code_at, enrol

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    with chromium(monkeypatch) as browser:
        context = browser.new_context()
        yield context.new_page()
        context.close()


def sign_in(page: Page, base: str, password: str = ALICE_PASSWORD) -> None:
    page.goto(f"{base}/signin/")
    page.get_by_label("Account ID (12 digits) or account alias").fill("111111111111")
    page.get_by_label("IAM user name").fill("alice")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def change_password(page: Page, current: str, new: str) -> None:
    page.get_by_label("Current password").fill(current)
    page.get_by_label("New password", exact=True).fill(new)
    page.get_by_label("Confirm new password").fill(new)
    page.get_by_role("button", name="Change password").click()


def test_it_walks_first_sign_in_enrolment_and_sign_in_with_a_code(
    live_server, account, root_actor, self_managing_alice, page
):
    base = live_server.url
    passwords.update_login_profile(
        account=account, user_name="alice", password_reset_required=True, actor=root_actor
    )

    # First sign-in: the reset-required password must be changed before anything else.
    sign_in(page, base)
    page.wait_for_url(re.compile(r"/my/password/$"))
    assert "Your administrator requires you to set a new password" in page.content()
    page.goto(f"{base}/my/access-keys/")
    page.wait_for_url(re.compile(r"/my/password/$"))
    change_password(page, ALICE_PASSWORD, "password")
    assert "Password is too common" in page.locator(".errorlist").all_inner_texts()[0]
    change_password(page, ALICE_PASSWORD, "Second-lantern-44")
    page.wait_for_url(re.compile(r"/my/$"))

    # Enrol a TOTP device by reading the secret from the page and computing two codes.
    page.goto(f"{base}/my/mfa/enrol/")
    page.get_by_label("Device name").fill("alice-phone")
    page.get_by_role("button", name="Next").click()
    assert page.get_by_role("img", name="QR code for MFA device alice-phone").is_visible()
    seed = page.locator("#mfa-secret").inner_text()
    page.get_by_label("MFA code 1").fill(code_at(seed, -1))
    page.get_by_label("MFA code 2").fill(code_at(seed, 0))
    page.get_by_role("button", name="Assign MFA").click()
    page.wait_for_url(re.compile(r"/my/$"))
    assert "alice-phone" in page.content()

    # Sign out, then in again: password, then a code.
    page.get_by_role("button", name="Sign out").first.click()
    page.wait_for_url(re.compile(r"/signin/$"))
    passwords.clock.offset = timedelta(seconds=60)
    sign_in(page, base, "Second-lantern-44")
    page.wait_for_url(re.compile(r"/signin/mfa/$"))
    code = code_at(seed)
    page.get_by_label("MFA code").fill(code)
    page.get_by_role("button", name="Submit").click()
    page.goto(f"{base}/my/")
    assert page.get_by_role("heading", name="My security credentials").is_visible()

    # The same code a second time is refused.
    page.get_by_role("button", name="Sign out").first.click()
    sign_in(page, base, "Second-lantern-44")
    page.wait_for_url(re.compile(r"/signin/mfa/$"))
    page.get_by_label("MFA code").fill(code)
    page.get_by_role("button", name="Submit").click()
    assert "The MFA code is not valid" in page.content()
    page.goto(f"{base}/my/")
    page.wait_for_url(re.compile(r"/signin/"))


def test_it_locks_out_and_unlocks_after_the_duration(live_server, account, alice, page):
    account.lockout_threshold = 3
    account.lockout_duration_s = 30 * 60
    account.save(update_fields=["lockout_threshold", "lockout_duration_s"])
    base = live_server.url
    for _ in range(3):
        sign_in(page, base, "Wrong-password-1")
        assert "Your authentication information is incorrect" in page.content()

    sign_in(page, base)
    assert "Your authentication information is incorrect" in page.content()
    assert User.objects.get(pk=alice.pk).locked_until is not None

    passwords.clock.offset = timedelta(minutes=31)
    sign_in(page, base)
    page.wait_for_url(re.compile(r"/$"))
    assert "/signin/" not in page.url


def test_it_forces_an_expired_password_to_be_changed(live_server, account, root_actor, alice, page):
    passwords.update_account_password_policy(
        account=account, actor=root_actor, minimum_password_length=8, max_password_age=30
    )
    passwords.clock.offset = timedelta(days=31)
    base = live_server.url

    sign_in(page, base)
    page.wait_for_url(re.compile(r"/my/password/$"))
    assert "Your password has expired" in page.content()
    change_password(page, ALICE_PASSWORD, "Renewed-lantern-31")
    page.wait_for_url(re.compile(r"/my/$"))


def test_it_takes_a_device_less_user_to_enrolment_when_mfa_is_required(
    live_server, account, alice, page
):
    account.require_mfa_for_console = True
    account.save(update_fields=["require_mfa_for_console"])
    base = live_server.url

    sign_in(page, base)
    page.wait_for_url(re.compile(r"/my/mfa/enrol/$"))
    assert "Your account requires multi-factor authentication" in page.content()
    page.goto(f"{base}/my/sessions/")
    page.wait_for_url(re.compile(r"/my/mfa/enrol/$"))


def test_it_signs_out_an_idle_session(live_server, account, alice, page):
    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/my/")
    assert page.get_by_role("heading", name="My security credentials").is_visible()

    passwords.clock.offset = timedelta(seconds=account.session_idle_timeout_s + 1)
    page.goto(f"{base}/my/")

    page.wait_for_url(re.compile(r"/signin/"))
    assert "Your session timed out" in page.content()


def test_it_signs_in_with_a_code_for_an_enrolled_user(live_server, alice, page):
    _device, seed = enrol(alice)
    passwords.clock.offset = timedelta(seconds=60)
    base = live_server.url
    sign_in(page, base)
    page.wait_for_url(re.compile(r"/signin/mfa/$"))
    page.get_by_label("MFA code").fill(code_at(seed))
    page.get_by_role("button", name="Submit").click()
    page.goto(f"{base}/my/")
    assert page.get_by_role("heading", name="My security credentials").is_visible()
