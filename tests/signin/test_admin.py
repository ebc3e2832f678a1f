"""Administrators' sign-in actions on a user: console password, unlock, enable, MFA device,
sessions; the group MFA rule. Each is authorized by the administrator's policies and audited.

The cast, on top of tests/signin/conftest.py (``alice``, ``mallory``):

- ``admin``: an IAM user of Alice's company with AdministratorAccess — may do everything.
- ``nobody``: an IAM user with no policy — every action is AWS's 403.
- ``outsider``: an administrator of the other company — Alice's people are not there (404).
- ``helpdesk``: may only reset Alice's password (``iam:UpdateLoginProfile`` on her ARN).
"""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from identity import passwords, services, signin
from identity.models import Account, ConsoleSession, Group, MFADevice, User
from policies import services as policy_services
from tests.conftest import actor_for
from tests.console.conftest import ADMIN, make_user, sign_in
from tests.signin.conftest import ALICE_PASSWORD, enrol

ALICE_ARN = "arn:aws:iam::111111111111:user/alice"
HELPDESK_POLICY = """{
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iam:UpdateLoginProfile",
                   "Resource": "arn:aws:iam::111111111111:user/alice"}]
}"""


@pytest.fixture(autouse=True)
def _decisions_from_postgres(settings) -> None:
    """No propagation worker runs here: decisions are computed from PostgreSQL."""
    settings.REDIS_URL = ""


@pytest.fixture
def admin(account: Account) -> User:
    return make_user(account, "admin", ADMIN)


@pytest.fixture
def nobody(account: Account) -> User:
    return make_user(account, "nobody")


@pytest.fixture
def outsider(other_account: Account) -> User:
    return make_user(other_account, "outsider", ADMIN)


@pytest.fixture
def helpdesk(account: Account, root_actor) -> User:
    user = make_user(account, "helpdesk")
    policy_services.put_user_policy(
        account=account,
        user_name="helpdesk",
        policy_name="ResetAlice",
        policy_document=HELPDESK_POLICY,
        actor=root_actor,
    )
    return user


@pytest.fixture
def bob(account: Account, root_actor) -> User:
    """A user without a console password yet."""
    return services.create_user(account=account, user_name="bob", actor=root_actor)


def _lock(user: User) -> None:
    User.objects.filter(pk=user.pk).update(
        failed_signin_count=10, locked_until=signin.now() + timedelta(minutes=30)
    )


def _signed_in_elsewhere(user: User) -> Client:
    other = Client()
    response = other.post(
        "/signin/",
        {"account": "111111111111", "user_name": user.name, "password": ALICE_PASSWORD},
    )
    assert response.status_code == 302
    return other


# name, kwargs, method, audited action, setup, check after success
def _setup_none(alice: User, bob: User) -> None:
    return None


def _check_password_created(alice: User, bob: User, response) -> None:
    bob.refresh_from_db()
    assert bob.has_login_profile
    assert bob.password_reset_required
    assert response.status_code == 200


def _check_password_reset(alice: User, bob: User, response) -> None:
    alice.refresh_from_db()
    assert alice.password_reset_required
    assert not alice.check_password(ALICE_PASSWORD)
    assert response.status_code == 200


def _check_password_deleted(alice: User, bob: User, response) -> None:
    alice.refresh_from_db()
    assert not alice.has_login_profile


def _setup_locked(alice: User, bob: User) -> None:
    _lock(alice)


def _check_unlocked(alice: User, bob: User, response) -> None:
    alice.refresh_from_db()
    assert (alice.failed_signin_count, alice.locked_until) == (0, None)


def _setup_disabled(alice: User, bob: User) -> None:
    User.objects.filter(pk=alice.pk).update(is_active=False)


def _check_enabled(alice: User, bob: User, response) -> None:
    alice.refresh_from_db()
    assert alice.is_active


def _check_exempt(alice: User, bob: User, response) -> None:
    alice.refresh_from_db()
    assert alice.lockout_exempt


def _setup_device(alice: User, bob: User) -> None:
    enrol(alice)


def _check_deactivated(alice: User, bob: User, response) -> None:
    assert not MFADevice.objects.filter(user=alice).exists()


def _setup_session(alice: User, bob: User) -> None:
    _signed_in_elsewhere(alice)


def _check_sessions_ended(alice: User, bob: User, response) -> None:
    assert not ConsoleSession.objects.filter(user=alice, ended_at__isnull=True).exists()


def _check_page(alice: User, bob: User, response) -> None:
    assert response.status_code == 200


SERIAL = "arn:aws:iam::111111111111:mfa/alice-phone"
ACTIONS = [
    ("password", {"user_name": "bob"}, "post", "iam:CreateLoginProfile", _setup_none,
     _check_password_created),
    ("password_reset", {"user_name": "alice"}, "post", "iam:UpdateLoginProfile", _setup_none,
     _check_password_reset),
    ("password_delete", {"user_name": "alice"}, "post", "iam:DeleteLoginProfile", _setup_none,
     _check_password_deleted),
    ("unlock", {"user_name": "alice"}, "post", "portcullis:UnlockUser", _setup_locked,
     _check_unlocked),
    ("enable", {"user_name": "alice"}, "post", "portcullis:EnableUser", _setup_disabled,
     _check_enabled),
    ("lockout_exemption", {"user_name": "alice"}, "post", "portcullis:SetLockoutExemption",
     _setup_none, _check_exempt),
    ("mfa_deactivate", {"user_name": "alice", "serial_number": SERIAL}, "post",
     "iam:DeactivateMFADevice", _setup_device, _check_deactivated),
    ("sessions_end", {"user_name": "alice"}, "post", "portcullis:EndUserSessions",
     _setup_session, _check_sessions_ended),
    ("user_console_access", {"user_name": "alice"}, "get", None, _setup_none, _check_page),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kwargs", "method", "action", "setup", "check"), ACTIONS)
def test_it_applies_the_permission_matrix_to_every_admin_action(
    client, alice, bob, admin, nobody, outsider, name, kwargs, method, action, setup, check
):
    setup(alice, bob)
    url = reverse(f"identity_admin:{name}", kwargs=kwargs)
    send = client.post if method == "post" else client.get
    target_arn = f"arn:aws:iam::111111111111:user/{kwargs['user_name']}"
    audited = AuditEvent.objects.filter(action=action, resource_arn=target_arn)

    anonymous = send(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/signin/")

    sign_in(client, nobody)
    denied = send(url)
    assert denied.status_code == 403
    declared = action or "iam:GetUser"
    assert (
        f"User: arn:aws:iam::111111111111:user/nobody is not authorized to perform: {declared} "
        f"on resource: {target_arn} because no identity-based policy allows the {declared} "
        "action"
    ) in denied.content.decode()

    sign_in(client, outsider)
    assert send(url).status_code == 404
    assert not audited.exists()

    sign_in(client, admin)
    response = send(url, {"exempt": "true"} if method == "post" else {})
    assert response.status_code in (200, 302)
    check(alice, bob, response)
    if action:
        event = audited.get()
        assert event.actor_arn == "arn:aws:iam::111111111111:user/admin"
        assert event.result == AuditEvent.Result.SUCCESS


def test_it_shows_a_generated_password_once_that_signs_in_with_reset_required(
    client, account, admin, bob
):
    sign_in(client, admin)

    response = client.post(reverse("identity_admin:password", kwargs={"user_name": "bob"}))

    body = response.content.decode()
    start = body.index('id="generated-password" value="') + len('id="generated-password" value="')
    # The page escapes HTML, and a generated password may contain & or '.
    password = html.unescape(body[start : body.index('"', start)])
    assert passwords.password_rule_violations(password=password, account=account) == []
    assert response["Cache-Control"].startswith("max-age=0, no-cache, no-store")
    event = AuditEvent.objects.get(action="iam:CreateLoginProfile")
    assert password not in str(event.request_parameters)
    # Shown once: the page about bob does not show it again.
    page = client.get(reverse("identity_admin:user_console_access", kwargs={"user_name": "bob"}))
    assert password not in page.content.decode()
    assert "Must be changed at the next sign-in." in page.content.decode()

    bob_client = Client()
    signed_in = bob_client.post(
        "/signin/", {"account": "111111111111", "user_name": "bob", "password": password}
    )
    assert signed_in.status_code == 302
    assert bob_client.get("/my/")["Location"] == reverse("identity:change_password")


def test_it_limits_an_administrator_to_what_their_policy_allows(client, alice, bob, helpdesk):
    sign_in(client, helpdesk)

    assert (
        client.post(reverse("identity_admin:password_reset", kwargs={"user_name": "alice"}))
    ).status_code == 200
    denied = client.post(reverse("identity_admin:password_reset", kwargs={"user_name": "bob"}))
    unlock = client.post(reverse("identity_admin:unlock", kwargs={"user_name": "alice"}))

    assert denied.status_code == 403
    assert (
        "User: arn:aws:iam::111111111111:user/helpdesk is not authorized to perform: "
        "iam:UpdateLoginProfile on resource: arn:aws:iam::111111111111:user/bob because no "
        "identity-based policy allows the iam:UpdateLoginProfile action"
    ) in denied.content.decode()
    assert unlock.status_code == 403
    assert "portcullis:UnlockUser" in unlock.content.decode()
    assert list(AuditEvent.objects.filter(category="change").values_list("action", flat=True))[
        -1:
    ] == ["iam:UpdateLoginProfile"]


def test_it_hides_the_buttons_an_administrator_may_not_use(client, alice, helpdesk, account):
    policy_services.put_user_policy(
        account=account,
        user_name="helpdesk",
        policy_name="ReadAlice",
        policy_document=HELPDESK_POLICY.replace("iam:UpdateLoginProfile", "iam:GetUser"),
        actor=actor_for(User.objects.get(account=account, is_root=True)),
    )
    sign_in(client, helpdesk)

    body = client.get(
        reverse("identity_admin:user_console_access", kwargs={"user_name": "alice"})
    ).content.decode()

    assert "Reset password" in body
    assert "Remove console password" not in body
    assert "You are not authorized to list this user's MFA devices." in body


def test_it_ends_the_users_sessions_at_their_next_request(client, alice, admin):
    alices_browser = _signed_in_elsewhere(alice)
    assert alices_browser.get("/my/").status_code == 200
    sign_in(client, admin)

    client.post(reverse("identity_admin:sessions_end", kwargs={"user_name": "alice"}))

    response = alices_browser.get("/my/")
    assert response.status_code == 302
    assert response["Location"].startswith("/signin/")
    event = AuditEvent.objects.get(action="portcullis:EndUserSessions")
    assert event.after == {"SessionsEnded": 1}


def test_it_lets_an_unlocked_user_sign_in_with_the_right_password(client, alice, admin):
    _lock(alice)
    locked_out = Client().post(
        "/signin/", {"account": "111111111111", "user_name": "alice", "password": ALICE_PASSWORD}
    )
    assert locked_out.status_code == 401
    sign_in(client, admin)

    client.post(reverse("identity_admin:unlock", kwargs={"user_name": "alice"}))

    assert _signed_in_elsewhere(alice).get("/my/").status_code == 200
    event = AuditEvent.objects.get(action="portcullis:UnlockUser")
    assert event.before["FailedSignInCount"] == 10


def test_it_refuses_another_users_device(client, alice, mallory, admin):
    device, _ = enrol(mallory)
    sign_in(client, admin)
    url = reverse(
        "identity_admin:mfa_deactivate",
        kwargs={"user_name": "alice", "serial_number": device.serial_number},
    )

    response = client.post(url)

    assert response.status_code == 404
    device.refresh_from_db()
    assert device.user_id == mallory.pk
    assert not AuditEvent.objects.filter(action="iam:DeactivateMFADevice").exists()


def test_it_asks_for_the_password_again_before_an_admin_action(client, alice, admin):
    sign_in(client, admin)
    passwords.clock.offset = timedelta(minutes=6)
    url = reverse("identity_admin:password_reset", kwargs={"user_name": "alice"})

    response = client.post(url, HTTP_REFERER="http://testserver/users/alice/console-access/")

    assert response.status_code == 302
    assert response["Location"] == (
        "/signin/reauth/?next=http%3A%2F%2Ftestserver%2Fusers%2Falice%2Fconsole-access%2F"
    )
    alice.refresh_from_db()
    assert alice.check_password(ALICE_PASSWORD)
    assert not AuditEvent.objects.filter(action="iam:UpdateLoginProfile").exists()


def test_it_lets_an_admin_require_mfa_of_a_groups_members(client, account, alice, admin):
    root_actor = actor_for(User.objects.get(account=account, is_root=True))
    services.create_group(account=account, group_name="ops", actor=root_actor)
    services.add_user_to_group(
        account=account, group_name="ops", user_name="alice", actor=root_actor
    )
    sign_in(client, admin)
    group_page = client.get(reverse("console:group_detail", kwargs={"group_name": "ops"}))
    assert "MFA not required by this group" in group_page.content.decode()
    assert 'href="/groups/ops/console-access/"' in group_page.content.decode()

    client.post(
        reverse("identity_admin:group_mfa_requirement", kwargs={"group_name": "ops"}),
        {"required": "true"},
    )

    assert Group.objects.get(account=account, name="ops").require_mfa_for_console
    group_page = client.get(reverse("console:group_detail", kwargs={"group_name": "ops"}))
    assert "members must use MFA" in group_page.content.decode()
    event = AuditEvent.objects.get(action="portcullis:SetGroupMFARequirement")
    assert (event.before, event.after) == (
        {"RequireMFAForConsole": False},
        {"RequireMFAForConsole": True},
    )
    alices_browser = Client()
    response = alices_browser.post(
        "/signin/", {"account": "111111111111", "user_name": "alice", "password": ALICE_PASSWORD}
    )
    assert response["Location"] == reverse("identity:mfa_enrol")
    assert alices_browser.get("/my/access-keys/")["Location"] == reverse("identity:mfa_enrol")


def test_it_does_not_require_mfa_of_users_outside_the_group(client, account, alice, mallory):
    root_actor = actor_for(User.objects.get(account=account, is_root=True))
    services.create_group(account=account, group_name="ops", actor=root_actor)
    services.add_user_to_group(
        account=account, group_name="ops", user_name="mallory", actor=root_actor
    )
    Group.objects.filter(name="ops").update(require_mfa_for_console=True)

    response = Client().post(
        "/signin/", {"account": "111111111111", "user_name": "alice", "password": ALICE_PASSWORD}
    )

    assert response["Location"] == "/"


@pytest.mark.parametrize(
    ("name", "method", "action"),
    [
        ("group_console_access", "get", "iam:GetGroup"),
        ("group_mfa_requirement", "post", "portcullis:SetGroupMFARequirement"),
    ],
)
def test_it_applies_the_permission_matrix_to_the_group_pages(
    client, account, root_actor, admin, nobody, outsider, name, method, action
):
    services.create_group(account=account, group_name="ops", actor=root_actor)
    url = reverse(f"identity_admin:{name}", kwargs={"group_name": "ops"})
    send = client.post if method == "post" else client.get
    data = {"required": "true"} if method == "post" else {}

    assert send(url, data)["Location"].startswith("/signin/")
    sign_in(client, nobody)
    denied = send(url, data)
    assert denied.status_code == 403
    assert (
        f"is not authorized to perform: {action} on resource: "
        "arn:aws:iam::111111111111:group/ops because no identity-based policy allows"
    ) in denied.content.decode()
    sign_in(client, outsider)
    assert send(url, data).status_code == 404
    sign_in(client, admin)
    assert send(url, data).status_code in (200, 302)
    assert Group.objects.get(name="ops").require_mfa_for_console is (method == "post")


def test_it_declares_an_action_on_every_admin_view():
    from django.urls import URLPattern

    from console.access import DeclaredAction
    from identity.urls import admin_urlpatterns

    undeclared = [
        p.name
        for p in admin_urlpatterns
        if not (
            isinstance(p, URLPattern)
            and isinstance(getattr(p.callback, "console_action", None), DeclaredAction)
            and getattr(p.callback, "requires_recent_authentication", None)
        )
    ]

    assert undeclared == []


def test_it_never_locks_an_exempted_break_glass_user(client, account, alice, admin):
    account.lockout_threshold = 3
    account.save(update_fields=["lockout_threshold"])
    sign_in(client, admin)
    client.post(
        reverse("identity_admin:lockout_exemption", kwargs={"user_name": "alice"}),
        {"exempt": "true"},
    )
    browser = Client()
    for _ in range(4):
        browser.post(
            "/signin/",
            {"account": "111111111111", "user_name": "alice", "password": "Wrong-password-1"},
        )

    response = browser.post(
        "/signin/", {"account": "111111111111", "user_name": "alice", "password": ALICE_PASSWORD}
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="portcullis:SetLockoutExemption")
    assert (event.before, event.after) == ({"LockoutExempt": False}, {"LockoutExempt": True})
