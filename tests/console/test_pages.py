"""Console pages: what an administrator does, through the same services as the API."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from console import reports
from console.models import CredentialReport
from identity import services as identity_services
from identity.models import AccessKey, Group, User
from policies import access as policy_access
from policies.models import PolicyVersion
from tests.conftest import actor_for
from tests.console.conftest import LIST_THINGS, make_user, sign_in

pytestmark = pytest.mark.django_db


def test_it_creates_a_user_with_password_groups_and_policies(admin_client, account, objects):
    response = admin_client.post(
        reverse("console:user_create"),
        {
            "user_name": "bob",
            "path": "/eng/",
            "console_password": "A-long-enough-passphrase-7",
            "password_reset_required": "on",
            "groups": ["devs"],
            "policy_arns": objects["policy"].arn,
            "tags": "team=platform",
        },
    )

    assert response.status_code == 302
    bob = User.objects.get(account=account, name="bob")
    assert bob.path == "/eng/"
    assert bob.has_login_profile
    assert bob.password_reset_required
    assert list(bob.iam_groups.values_list("name", flat=True)) == ["devs"]
    assert bob.tags == [{"Key": "team", "Value": "platform"}]
    actions = set(
        AuditEvent.objects.filter(actor_arn="arn:aws:iam::111111111111:user/admin").values_list(
            "action", flat=True
        )
    )
    assert {
        "iam:CreateUser",
        "iam:CreateLoginProfile",
        "iam:AddUserToGroup",
        "iam:AttachUserPolicy",
    } <= actions


def test_it_shows_the_service_error_next_to_the_field_and_changes_nothing(admin_client, account):
    response = admin_client.post(
        reverse("console:user_create"), {"user_name": "bad name", "path": "/"}
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert "id_user_name_errors" in body
    assert (
        "ValidationError: 1 validation error detected: Value &#x27;bad name&#x27; at "
        "&#x27;userName&#x27; failed to satisfy constraint"
    ) in body
    assert not User.objects.filter(account=account, name="bad name").exists()


def test_it_rolls_back_the_whole_creation_when_a_step_fails(admin_client, account):
    response = admin_client.post(
        reverse("console:user_create"),
        {"user_name": "dave", "policy_arns": "arn:aws:iam::111111111111:policy/Nope"},
    )

    assert response.status_code == 400
    assert not User.objects.filter(account=account, name="dave").exists()


def test_it_shows_validation_findings_at_their_line_and_saves_nothing(admin_client, objects):
    policy = objects["policy"]
    broken = LIST_THINGS.replace('"Effect": "Allow"', '"Effect": "Maybe"')

    response = admin_client.post(
        reverse("console:policy_edit", kwargs={"policy_arn": policy.arn}),
        {"policy_document": broken},
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert '<p class="finding ERROR" data-line="3"' in body
    assert PolicyVersion.objects.filter(policy=policy).count() == 1


def test_it_adds_a_version_and_rolls_back_to_the_previous_one(admin_client, objects):
    policy = objects["policy"]
    edited = LIST_THINGS.replace("iam:ListUsers", "iam:ListGroups")

    admin_client.post(
        reverse("console:policy_edit", kwargs={"policy_arn": policy.arn}),
        {"policy_document": edited, "set_as_default": "on"},
    )
    policy.refresh_from_db()
    assert policy.default_version_id == "v2"

    admin_client.post(
        reverse("console:policy_set_default", kwargs={"policy_arn": policy.arn}),
        {"version_id": "v1"},
    )
    policy.refresh_from_db()
    assert policy.default_version_id == "v1"
    assert AuditEvent.objects.filter(action="iam:SetDefaultPolicyVersion").count() == 1


def test_it_simulates_a_users_policies_with_matched_statements(admin_client, objects, account):
    response = admin_client.get(
        reverse("console:simulator"),
        {
            "source": "group",
            "principal_name": "devs",
            "actions": "iam:ListUsers",
            "resources": "*",
        },
    )
    assert response.status_code == 200
    assert "implicitDeny" in response.content.decode()

    identity_services.get_user(account=account, user_name="alice")
    from policies import services as policy_services

    policy_services.attach_group_policy(
        account=account,
        group_name="devs",
        policy_arn=objects["policy"].arn,
        actor=actor_for(User.objects.get(account=account, is_root=True)),
    )
    response = admin_client.get(
        reverse("console:simulator"),
        {"source": "user", "principal_name": "alice", "actions": "iam:ListUsers\niam:GetUser"},
    )
    body = response.content.decode()
    assert 'class="decision-allowed">allowed' in body
    assert "Allow: arn:aws:iam::111111111111:policy/ListThings, statement 0" in body
    assert 'class="decision-implicitDeny">implicitDeny' in body


def test_it_reports_missing_context_keys_in_the_simulator(admin_client):
    document = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:ListUsers", '
        '"Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/team": "a"}}}]}'
    )
    response = admin_client.get(
        reverse("console:simulator"),
        {"source": "custom", "policies": document, "actions": "iam:ListUsers"},
    )
    assert "aws:PrincipalTag/team" in response.content.decode()


def test_it_generates_and_downloads_the_credential_report(admin_client, account, objects, admin):
    AccessKey.objects.create(access_key_id="AKIAEXAMPLE000000001", user=admin, secret_encrypted="x")

    admin_client.post(reverse("console:credential_report_generate"))
    report = CredentialReport.objects.get(account=account)
    # The task ran in-process here (no worker in this test): the same function the task calls.
    reports.build_credential_report(account_id=account.id, generation=report.generation)
    response = admin_client.get(reverse("console:credential_report_download"))

    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert tuple(rows[0]) == reports.COLUMNS
    assert rows[1][0] == "<root_account>"
    assert rows[1][1] == "arn:aws:iam::111111111111:root"
    assert rows[1][3] == "not_supported"
    by_name = {r[0]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert by_name["alice"]["password_enabled"] == "false"
    assert by_name["alice"]["password_last_used"] == "N/A"
    assert by_name["admin"]["access_key_1_active"] == "true"
    assert by_name["admin"]["access_key_1_last_used_date"] == "N/A"
    assert by_name["admin"]["access_key_2_active"] == "false"
    assert AuditEvent.objects.filter(action="iam:GenerateCredentialReport").count() == 1
    # Within four hours, generating again returns the same report.
    assert reports.generate_credential_report(account)["State"] == "COMPLETE"


def test_it_tells_the_api_there_is_no_report_yet(account):
    with pytest.raises(reports.ReportNotPresent):
        reports.get_credential_report(account)


def test_it_searches_the_audit_trail_and_shows_an_event(admin_client, objects):
    response = admin_client.get(reverse("console:audit"), {"action": "iam:CreateGroup"})
    body = response.content.decode()
    assert "arn:aws:iam::111111111111:group/devs" in body
    assert "arn:aws:iam::111111111111:role/deployer" not in body
    event = AuditEvent.objects.get(action="iam:CreateGroup")
    detail = admin_client.get(reverse("console:audit_detail", kwargs={"event_id": event.pk}))
    assert detail.status_code == 200
    assert event.hash in detail.content.decode()


def test_it_hides_another_accounts_audit_events(client, outsider, objects):
    sign_in(client, outsider)
    event = AuditEvent.objects.get(action="iam:CreateGroup")
    response = client.get(reverse("console:audit_detail", kwargs={"event_id": event.pk}))
    assert response.status_code == 404


def test_it_applies_the_hardened_password_preset(admin_client, account):
    response = admin_client.post(reverse("console:account_policy"), {"preset": "hardened"})

    assert response.status_code == 302
    policy = account.password_policy
    assert policy.minimum_password_length == 14
    assert policy.password_reuse_prevention == 4
    assert not policy.require_symbols
    assert policy.max_password_age is None
    account.refresh_from_db()
    assert account.require_mfa_for_console
    assert AuditEvent.objects.filter(action="iam:UpdateAccountPasswordPolicy").exists()
    assert AuditEvent.objects.filter(action="portcullis:UpdateAccountSettings").exists()


def test_it_flags_security_findings_on_the_dashboard(admin_client, account, admin):
    body = admin_client.get(reverse("console:dashboard")).content.decode()
    assert "The root user has no MFA device." in body
    assert 'href="/policies/view/arn:aws:iam::aws:policy/AdministratorAccess"' in body


def test_it_lets_a_user_with_only_iam_user_change_password_change_it_and_nothing_else(account):
    user = make_user(account, "erin", "arn:aws:iam::aws:policy/IAMUserChangePassword")
    actor = actor_for(user)

    assert policy_access.decide(actor, "iam:ChangePassword", user.arn).allowed
    assert policy_access.decide(actor, "iam:GetAccountPasswordPolicy", "*").allowed
    assert not policy_access.decide(
        actor, "iam:ChangePassword", "arn:aws:iam::111111111111:user/alice"
    ).allowed
    assert not policy_access.decide(actor, "iam:ListUsers", "*").allowed


def test_it_denies_everything_but_mfa_setup_without_mfa_under_the_self_manage_policy(account):
    from datetime import UTC, datetime

    from audit.context import Actor

    user = make_user(
        account,
        "frank",
        "arn:aws:iam::aws:policy/PortcullisSelfManageCredentialsWithMFA",
        "arn:aws:iam::aws:policy/IAMReadOnlyAccess",
    )
    without_mfa = actor_for(user)
    with_mfa = Actor(
        arn=user.arn,
        account_id=user.account_id,
        kind="user",
        user=user,
        mfa_authenticated_at=datetime.now(UTC),
    )

    denied = policy_access.decide(without_mfa, "iam:ListUsers", "*")
    assert denied.decision == "explicitDeny"
    assert denied.matched_statements[0].sid == "DenyAllExceptListedIfNoMFA"
    assert policy_access.decide(without_mfa, "iam:EnableMFADevice", user.arn).allowed
    assert policy_access.decide(with_mfa, "iam:ListUsers", "*").allowed
    assert policy_access.decide(with_mfa, "iam:CreateAccessKey", user.arn).allowed


def test_it_lists_users_with_a_bounded_number_of_queries(
    admin_client, account, objects, django_assert_max_num_queries
):
    root_actor = actor_for(User.objects.get(account=account, is_root=True))
    group = Group.objects.get(account=account, name="devs")
    for i in range(60):
        u = identity_services.create_user(account=account, user_name=f"u{i:03}", actor=root_actor)
        group.memberships.create(user=u)
        AccessKey.objects.create(access_key_id=f"AKIAEXAMPLE{i:09}", user=u, secret_encrypted="x")

    # Fixed whatever the number of users: the page, its groups, its MFA devices and keys (one
    # query each), the change mark and the (capped, cached) total.
    with django_assert_max_num_queries(17):
        response = admin_client.get(reverse("console:users"), {"mfa": "no", "sort": "-created"})
    assert response.status_code == 200
    assert response.content.decode().count("<tr>") == 51  # header + a page of 50


@pytest.mark.parametrize(
    ("name", "kwargs", "limit"),
    [
        ("console:dashboard", {}, 30),
        ("console:user_detail", {"user_name": "alice"}, 19),
        ("console:groups", {}, 15),
        ("console:policies", {}, 18),
        ("console:roles", {}, 15),
        ("console:audit", {}, 15),
    ],
)
def test_it_renders_pages_with_a_bounded_number_of_queries(
    admin_client, objects, django_assert_max_num_queries, name, kwargs, limit
):
    with django_assert_max_num_queries(limit):
        assert admin_client.get(reverse(name, kwargs=kwargs)).status_code == 200
