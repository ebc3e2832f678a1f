"""Sign-in: generic failures, lockout, throttling, redirects, sessions and their rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from audit.models import AuditEvent
from identity import passwords, signin
from identity.models import ConsoleSession, User
from tests.conftest import actor_for
from tests.signin.conftest import ALICE_PASSWORD, MALLORY_PASSWORD, code_at, enrol


def post_signin(client: Client, password: str = ALICE_PASSWORD, **extra: str):
    data = {"account": "111111111111", "user_name": "alice", "password": password}
    data.update(extra)
    return client.post("/signin/", data, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="198.51.100.7")


def set_lockout(account, threshold: int = 3, duration_s: int = 600) -> None:
    account.lockout_threshold = threshold
    account.lockout_duration_s = duration_s
    account.save(update_fields=["lockout_threshold", "lockout_duration_s"])


def test_it_answers_unknown_users_and_wrong_passwords_alike(client, alice):
    wrong = post_signin(client, password="Not-the-password-1")
    unknown = post_signin(client, user_name="nobody")
    other_account = post_signin(client, account="999999999999")

    for response in (wrong, unknown, other_account):
        assert response.status_code == 401
        assert signin.GENERIC_FAILURE in response.content.decode()
    codes = list(
        AuditEvent.objects.filter(category="signin")
        .order_by("id")
        .values_list("error_code", flat=True)
    )
    assert codes == ["WrongPassword", "UnknownUser", "UnknownUser"]
    event = AuditEvent.objects.filter(category="signin").first()
    assert (event.source_ip, event.user_agent) == ("198.51.100.7", "Firefox/140")
    assert "Not-the-password-1" not in str(event.request_parameters)


def test_it_locks_after_the_threshold_and_unlocks_after_the_duration(client, account, alice):
    set_lockout(account, threshold=3, duration_s=600)
    for _ in range(3):
        post_signin(client, password="Wrong-password-1")
    alice.refresh_from_db()
    locked_until = alice.locked_until
    assert locked_until is not None

    # The right password while locked gets the same answer, and does not extend the lock.
    response = post_signin(client)
    assert response.status_code == 401
    assert signin.GENERIC_FAILURE in response.content.decode()
    post_signin(client, password="Wrong-password-1")
    alice.refresh_from_db()
    assert alice.locked_until == locked_until
    assert AuditEvent.objects.filter(error_code="Locked").count() == 2

    passwords.clock.offset = timedelta(seconds=601)
    response = post_signin(client)

    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.failed_signin_count, alice.locked_until) == (0, None)


def test_it_counts_user_names_case_insensitively_and_resets_on_success(client, account, alice):
    set_lockout(account, threshold=3)
    post_signin(client, password="Wrong-password-1", user_name="ALICE")
    post_signin(client, password="Wrong-password-1", user_name="Alice")
    alice.refresh_from_db()
    assert alice.failed_signin_count == 2

    post_signin(client)

    alice.refresh_from_db()
    assert alice.failed_signin_count == 0


def test_it_never_locks_an_exempt_user_and_lets_an_admin_unlock(client, account, alice, root_actor):
    set_lockout(account, threshold=2)
    for _ in range(2):
        post_signin(client, password="Wrong-password-1")
    alice.refresh_from_db()
    assert alice.locked_until is not None

    signin.unlock_user(user=alice, actor=root_actor)

    assert post_signin(client).status_code == 302
    assert AuditEvent.objects.filter(action="portcullis:UnlockUser").count() == 1
    User.objects.filter(pk=alice.pk).update(lockout_exempt=True)
    other = Client()
    for _ in range(4):
        post_signin(other, password="Wrong-password-1")
    alice.refresh_from_db()
    assert alice.locked_until is None


def test_it_counts_mfa_failures_towards_the_lockout(client, account, alice):
    set_lockout(account, threshold=2)
    enrol(alice)
    post_signin(client)
    client.post("/signin/mfa/", {"code": "000000"})
    alice.refresh_from_db()
    assert alice.failed_signin_count == 1
    assert AuditEvent.objects.filter(error_code="MFAFailed").count() == 1


def test_it_refuses_a_replayed_code_at_sign_in(client, alice):
    _device, seed = enrol(alice)
    passwords.clock.offset = timedelta(minutes=2)
    code = code_at(seed)
    post_signin(client)
    assert client.post("/signin/mfa/", {"code": code}).status_code == 302
    client.post("/signout/")

    second = Client()
    post_signin(second)
    response = second.post("/signin/mfa/", {"code": code})

    assert response.status_code == 401
    assert AuditEvent.objects.filter(error_code="TOTPReplay").count() == 1


def test_it_cannot_finish_with_another_users_device(client, alice, mallory):
    enrol(alice)
    _mallory_device, mallory_seed = enrol(mallory)
    post_signin(client)

    response = client.post("/signin/mfa/", {"code": code_at(mallory_seed, 1)})

    assert response.status_code == 401
    assert client.get("/my/").status_code == 302


def test_it_throttles_one_address_before_it_can_lock_everyone(client, alice, settings):
    settings.SIGNIN_IP_FAILURE_LIMIT = 3
    for _ in range(3):
        post_signin(client, user_name="someone-else")

    response = post_signin(client)

    assert response.status_code == 429
    assert signin.THROTTLED_MESSAGE in response.content.decode()
    # Another address is not affected.
    assert (
        Client()
        .post(
            "/signin/",
            {"account": "111111111111", "user_name": "alice", "password": ALICE_PASSWORD},
            REMOTE_ADDR="203.0.113.9",
        )
        .status_code
        == 302
    )


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"],
)
def test_it_refuses_to_redirect_outside_portcullis(client, alice, target):
    response = post_signin(client, next=target)

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_it_follows_a_next_inside_portcullis(client, alice):
    assert post_signin(client, next="/my/sessions/")["Location"] == "/my/sessions/"


def test_it_keeps_anonymous_visitors_out_of_the_console(client, db):
    assert client.get("/")["Location"] == "/signin/?next=/"
    assert client.get("/my/password/")["Location"].startswith("/signin/")
    assert client.get("/healthz").status_code == 200
    assert client.get("/signin/").status_code == 200


def test_it_ends_a_session_after_the_idle_timeout(client, account, alice):
    post_signin(client)
    assert client.get("/my/").status_code == 200

    passwords.clock.offset = timedelta(seconds=account.session_idle_timeout_s + 1)
    response = client.get("/my/")

    assert response["Location"].startswith("/signin/")
    assert AuditEvent.objects.filter(action="signin:ConsoleLogout").last().request_parameters == {
        "Reason": "IdleTimeout"
    }


def test_it_ends_a_session_after_the_absolute_lifetime(client, account, alice):
    account.session_absolute_lifetime_s = 3600
    account.session_idle_timeout_s = 3000
    account.save(update_fields=["session_absolute_lifetime_s", "session_idle_timeout_s"])
    post_signin(client)
    for minutes in (40, 80):
        passwords.clock.offset = timedelta(minutes=minutes)
        response = client.get("/my/")

    assert response["Location"].startswith("/signin/")


def test_it_ends_other_sessions_when_the_password_changes(account, root_actor, alice):
    passwords.update_account_password_policy(
        account=account,
        actor=root_actor,
        minimum_password_length=8,
        allow_users_to_change_password=True,
    )
    laptop, phone = Client(), Client()
    post_signin(laptop)
    post_signin(phone)

    response = laptop.post(
        "/my/password/",
        {
            "current_password": ALICE_PASSWORD,
            "new_password": "Fresh-lantern-6",
            "confirm_password": "Fresh-lantern-6",
        },
    )

    assert response.status_code == 302
    assert laptop.get("/my/").status_code == 200
    assert phone.get("/my/")["Location"].startswith("/signin/")


def test_it_forces_a_reset_required_password_to_be_changed_first(
    client, account, root_actor, alice
):
    passwords.update_login_profile(
        account=account, user_name="alice", password_reset_required=True, actor=root_actor
    )
    post_signin(client)

    assert client.get("/")["Location"] == "/my/password/"
    assert client.get("/my/access-keys/")["Location"] == "/my/password/"
    page = client.get("/my/password/")
    assert page.status_code == 200
    assert "At least 8 characters" in page.content.decode()


def test_it_forces_an_expired_password_to_be_changed(client, account, root_actor, alice):
    passwords.update_account_password_policy(account=account, actor=root_actor, max_password_age=30)
    passwords.clock.offset = timedelta(days=31)
    post_signin(client)

    assert client.get("/my/")["Location"] == "/my/password/"
    assert AuditEvent.objects.filter(error_code="PasswordExpired").count() == 1


def test_it_refuses_sign_in_after_hard_expiry(client, account, root_actor, alice):
    passwords.update_account_password_policy(
        account=account, actor=root_actor, max_password_age=30, hard_expiry=True
    )
    passwords.clock.offset = timedelta(days=31)

    response = post_signin(client)

    assert response.status_code == 401
    assert "Ask your administrator" in response.content.decode()


def test_it_sends_a_device_less_user_to_enrolment_when_mfa_is_required(client, account, alice):
    account.require_mfa_for_console = True
    account.save(update_fields=["require_mfa_for_console"])

    assert post_signin(client)["Location"] == "/my/mfa/enrol/"
    assert client.get("/")["Location"] == "/my/mfa/enrol/"
    assert client.get("/my/access-keys/")["Location"] == "/my/mfa/enrol/"
    assert client.get("/my/mfa/enrol/").status_code == 200


def test_it_lets_a_user_end_their_other_sessions(alice):
    laptop, phone = Client(), Client()
    post_signin(laptop)
    post_signin(phone)
    assert ConsoleSession.objects.filter(user=alice, ended_at__isnull=True).count() == 2

    laptop.post("/my/sessions/end/", {"all": "1"})

    assert laptop.get("/my/").status_code == 200
    assert phone.get("/my/")["Location"].startswith("/signin/")


def test_it_asks_for_step_up_when_the_last_authentication_is_old(client, alice):
    post_signin(client)
    passwords.clock.offset = timedelta(minutes=6)

    response = client.get("/my/mfa/enrol/")

    assert response["Location"] == "/signin/reauth/?next=%2Fmy%2Fmfa%2Fenrol%2F"
    response = client.post(
        "/signin/reauth/", {"password": ALICE_PASSWORD, "next": "/my/mfa/enrol/"}
    )
    assert response["Location"] == "/my/mfa/enrol/"
    assert client.get("/my/mfa/enrol/").status_code in (200, 403)


def test_it_signs_the_root_user_in_by_email(client, root):
    response = client.post(
        "/signin/root/", {"email": "ROOT@alice.example", "password": "Root-password-1!"}
    )

    assert response.status_code == 302
    assert client.get("/my/").status_code == 200


def test_it_lets_mallory_sign_in_with_her_own_password_only(client, alice, mallory):
    assert post_signin(client, password=MALLORY_PASSWORD).status_code == 401
    assert post_signin(client, user_name="mallory", password=MALLORY_PASSWORD).status_code == 302
    _ = actor_for(mallory)
