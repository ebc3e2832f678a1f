"""Account-wide sign-in rules: step-up for anything the root user changes, disabling inactive
users (PCI DSS 8.2.6), the password expiry banner, the per-address throttle setting, and the
console's portcullis:* actions known to policy validation."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from identity import passwords, signin, tasks
from identity.models import Account, ConsoleSession, PasswordPolicy, User
from policies.engine import PolicyType, validate
from policies.engine.catalog import known_actions
from tests.conftest import actor_for
from tests.console.conftest import sign_in
from tests.signin.conftest import ALICE_PASSWORD, MALLORY_PASSWORD

ROOT_PASSWORD = "Root-password-1!"


def _root_client() -> Client:
    client = Client()
    response = client.post(
        "/signin/root/", {"email": "root@alice.example", "password": ROOT_PASSWORD}
    )
    assert response.status_code == 302
    return client


# --- Step-up for the root user -----------------------------------------------------------------


def test_it_asks_the_root_user_to_reauthenticate_before_any_change(account, alice):
    root_browser = _root_client()
    passwords.clock.offset = timedelta(minutes=6)

    response = root_browser.post(
        "/my/sessions/end/", {"all": "1"}, HTTP_REFERER="http://testserver/my/sessions/"
    )

    assert response.status_code == 302
    assert response["Location"] == "/signin/reauth/?next=http%3A%2F%2Ftestserver%2Fmy%2Fsessions%2F"
    assert not AuditEvent.objects.filter(action="portcullis:EndConsoleSessions").exists()
    # Reading needs no step-up.
    assert root_browser.get("/my/sessions/").status_code == 200

    reauth = root_browser.post(
        "/signin/reauth/", {"password": ROOT_PASSWORD, "next": "/my/sessions/"}
    )
    assert reauth["Location"] == "/my/sessions/"
    done = root_browser.post("/my/sessions/end/", {"all": "1"})
    assert done["Location"] == reverse("identity:sessions")
    assert AuditEvent.objects.filter(action="portcullis:EndConsoleSessions").exists()


def test_it_does_not_ask_an_iam_user_to_reauthenticate_for_ordinary_changes(alice):
    browser = Client()
    browser.post(
        "/signin/", {"account": "111111111111", "user_name": "alice", "password": ALICE_PASSWORD}
    )
    passwords.clock.offset = timedelta(minutes=6)

    response = browser.post("/my/sessions/end/", {"all": "1"})

    assert response["Location"] == reverse("identity:sessions")


def test_it_lets_the_root_user_validate_a_policy_without_step_up(account):
    root_browser = _root_client()
    passwords.clock.offset = timedelta(minutes=6)

    response = root_browser.post(
        reverse("console:policy_validate"),
        {"document": '{"Version": "2012-10-17", "Statement": []}'},
    )

    assert response.status_code != 302


def test_it_sends_an_htmx_request_of_the_root_user_to_reauthenticate_as_a_page(account):
    root_browser = _root_client()
    passwords.clock.offset = timedelta(minutes=6)

    response = root_browser.post(
        "/my/sessions/end/",
        {"all": "1"},
        HTTP_HX_REQUEST="true",
        HTTP_REFERER="http://testserver/my/sessions/",
    )

    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/signin/reauth/?next=")


# --- Disabling inactive users ----------------------------------------------------------------


def _inactivity(account: Account, days: int = 90) -> None:
    account.disable_inactive_users_after_days = days
    account.save(update_fields=["disable_inactive_users_after_days"])


def test_it_disables_users_inactive_for_longer_than_the_account_allows(account, alice, mallory):
    _inactivity(account, 90)
    # Mallory signed in 10 days before the sweep; Alice never did.
    User.objects.filter(pk=mallory.pk).update(password_last_used=signin.now() + timedelta(days=81))
    passwords.clock.offset = timedelta(days=91)

    disabled = tasks.disable_inactive_users()

    assert disabled == 1
    alice.refresh_from_db()
    mallory.refresh_from_db()
    assert (alice.is_active, mallory.is_active) == (False, True)
    assert User.objects.get(account=account, is_root=True).is_active
    event = AuditEvent.objects.get(action="portcullis:DisableInactiveUser")
    assert (event.actor_kind, event.resource_arn) == (
        "system",
        "arn:aws:iam::111111111111:user/alice",
    )
    assert (event.before["Active"], event.after) == (True, {"Active": False})
    # Idempotent: a second run (or a redelivered task) changes and audits nothing.
    assert tasks.disable_inactive_users() == 0
    assert AuditEvent.objects.filter(action="portcullis:DisableInactiveUser").count() == 1
    # A disabled user cannot sign in, with the generic answer.
    response = Client().post(
        "/signin/", {"account": "111111111111", "user_name": "alice", "password": ALICE_PASSWORD}
    )
    assert response.status_code == 401
    assert signin.GENERIC_FAILURE in response.content.decode()
    assert AuditEvent.objects.filter(category="signin").last().error_code == "UserDisabled"


def test_it_leaves_users_alone_before_the_limit_and_without_the_setting(account, alice):
    passwords.clock.offset = timedelta(days=400)
    assert tasks.disable_inactive_users() == 0  # no setting: nobody is disabled

    _inactivity(account, 90)
    passwords.clock.offset = timedelta(days=89)
    assert tasks.disable_inactive_users() == 0
    alice.refresh_from_db()
    assert alice.is_active


def test_it_spares_break_glass_users(account, alice):
    _inactivity(account, 90)
    User.objects.filter(pk=alice.pk).update(lockout_exempt=True)
    passwords.clock.offset = timedelta(days=91)

    assert tasks.disable_inactive_users() == 0


def test_it_ends_the_sessions_of_a_disabled_user(account, alice):
    browser = Client()
    browser.post(
        "/signin/", {"account": "111111111111", "user_name": "alice", "password": ALICE_PASSWORD}
    )
    _inactivity(account, 90)
    ConsoleSession.objects.filter(user=alice).update(last_seen_at=signin.now())
    User.objects.filter(pk=alice.pk).update(password_last_used=None)
    passwords.clock.offset = timedelta(days=91)

    tasks.disable_inactive_users()

    assert not ConsoleSession.objects.filter(user=alice, ended_at__isnull=True).exists()
    assert browser.get("/my/")["Location"].startswith("/signin/")


def test_it_does_not_disable_a_re_enabled_user_again_at_the_next_sweep(account, alice, root):
    _inactivity(account, 90)
    passwords.clock.offset = timedelta(days=91)
    tasks.disable_inactive_users()
    alice.refresh_from_db()

    assert signin.enable_user(user=alice, actor=actor_for(root))

    assert tasks.disable_inactive_users() == 0
    alice.refresh_from_db()
    assert alice.is_active
    response = Client().post(
        "/signin/", {"account": "111111111111", "user_name": "alice", "password": ALICE_PASSWORD}
    )
    assert response.status_code == 302


def test_it_schedules_the_inactivity_sweep_in_beat():
    from console.celery import app

    entries = {e["task"] for e in app.conf.beat_schedule.values()}
    assert "identity.disable_inactive_users" in entries


# --- The expiry banner -------------------------------------------------------------------------


def test_it_shows_the_expiry_banner_on_every_page_until_the_password_changes(account, alice):
    PasswordPolicy.objects.create(
        account=account, max_password_age=30, allow_users_to_change_password=True
    )
    User.objects.filter(pk=alice.pk).update(
        password_last_changed=signin.now() - timedelta(days=20, hours=1)
    )
    browser = Client()
    browser.post(
        "/signin/", {"account": "111111111111", "user_name": "alice", "password": ALICE_PASSWORD}
    )
    banner = "Your password expires in 9 days. Change it from My security credentials."

    assert banner in browser.get("/my/").content.decode()
    assert banner in browser.get("/my/sessions/").content.decode()

    browser.post(
        "/my/password/",
        {
            "current_password": ALICE_PASSWORD,
            "new_password": MALLORY_PASSWORD + "-x",
            "confirm_password": MALLORY_PASSWORD + "-x",
        },
    )
    assert "Your password expires" not in browser.get("/my/").content.decode()


def test_it_shows_no_banner_far_from_expiry(account, alice):
    PasswordPolicy.objects.create(account=account, max_password_age=90)
    client = sign_in(Client(), alice)

    assert "Your password expires" not in client.get("/my/").content.decode()


# --- Settings and catalogue ------------------------------------------------------------------


def _settings_value(name: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'console.settings'; "
        f"from django.conf import settings; print(settings.{name})"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        cwd=str(django_settings.BASE_DIR),
        check=False,
    )


def test_it_reads_the_per_address_throttle_from_the_environment():
    configured = _settings_value("SIGNIN_IP_FAILURE_LIMIT", PORTCULLIS_SIGNIN_IP_FAILURE_LIMIT="7")
    refused = _settings_value("SIGNIN_IP_FAILURE_LIMIT", PORTCULLIS_SIGNIN_IP_FAILURE_LIMIT="0")
    nonsense = _settings_value("SIGNIN_IP_FAILURE_LIMIT", PORTCULLIS_SIGNIN_IP_FAILURE_LIMIT="lots")

    assert configured.stdout.strip() == "7"
    assert "ImproperlyConfigured" in refused.stderr
    assert nonsense.returncode != 0


@pytest.mark.parametrize(
    "action",
    [
        "portcullis:UnlockUser",
        "portcullis:EndUserSessions",
        "portcullis:EnableUser",
        "portcullis:SetGroupMFARequirement",
        "portcullis:SetLockoutExemption",
        "portcullis:UpdateAccountSettings",
    ],
)
def test_it_knows_the_consoles_portcullis_actions_in_validation(action):
    document = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        f'"Action": "{action}", "Resource": "*"}}]}}'
    )

    findings = validate(document, PolicyType.IDENTITY, known_actions=known_actions())

    assert [f.issue_code for f in findings if f.issue_code.startswith("UNKNOWN")] == []
