"""Editing an existing user, group or role: inline policies, tags, permissions boundary; and
the policy editor's live validation. Each change goes through the API's service and is
audited; each page is authorized by its own IAM action."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from identity.models import Role, User
from policies.models import InlinePolicy
from tests.console.conftest import LIST_THINGS, make_user, sign_in

pytestmark = pytest.mark.django_db

FULL = "arn:aws:iam::aws:policy/IAMFullAccess"
READONLY = "arn:aws:iam::aws:policy/IAMReadOnlyAccess"


def audited(action: str, resource: str) -> AuditEvent:
    """The newest such event, which the console's signed-in administrator caused."""
    event = AuditEvent.objects.filter(action=action, resource_arn=resource).latest("id")
    assert event.actor_arn == "arn:aws:iam::111111111111:user/admin"
    assert event.result == "Success"
    return event


@pytest.mark.parametrize(
    ("kind", "entity", "put", "delete"),
    [
        ("user", "alice", "iam:PutUserPolicy", "iam:DeleteUserPolicy"),
        ("group", "devs", "iam:PutGroupPolicy", "iam:DeleteGroupPolicy"),
        ("role", "deployer", "iam:PutRolePolicy", "iam:DeleteRolePolicy"),
    ],
)
def test_it_puts_edits_and_deletes_an_inline_policy(
    admin_client, objects, kind, entity, put, delete
):
    arn = objects[kind].arn
    editor = reverse(f"console:{kind}_inline_policy", args=[entity])
    assert admin_client.get(editor).status_code == 200

    response = admin_client.post(
        editor, {"policy_name": "ListThem", "policy_document": LIST_THINGS}
    )

    assert response.status_code == 302
    inline = InlinePolicy.objects.get(**{kind: objects[kind]}, name="ListThem")
    assert "iam:ListUsers" in inline.document
    assert audited(put, arn).request_parameters["PolicyName"] == "ListThem"

    # Opening it again shows its document; saving under the same name replaces it.
    page = admin_client.get(editor, {"policy_name": "ListThem"}).content.decode()
    assert "Edit inline policy ListThem" in page
    assert "iam:ListUsers" in page
    admin_client.post(
        editor,
        {
            "policy_name": "ListThem",
            "policy_document": LIST_THINGS.replace("ListUsers", "ListGroups"),
        },
    )
    inline.refresh_from_db()
    assert "iam:ListGroups" in inline.document

    response = admin_client.post(
        reverse(f"console:{kind}_inline_policy_delete", args=[entity]),
        {"policy_name": "ListThem"},
    )
    assert response.status_code == 302
    assert not InlinePolicy.objects.filter(**{kind: objects[kind]}).exists()
    assert audited(delete, arn).request_parameters["PolicyName"] == "ListThem"


def test_it_shows_findings_at_their_line_and_saves_no_broken_inline_policy(admin_client, objects):
    broken = LIST_THINGS.replace('"Effect": "Allow"', '"Effect": "Maybe"')

    response = admin_client.post(
        reverse("console:user_inline_policy", args=["alice"]),
        {"policy_name": "Broken", "policy_document": broken},
    )

    assert response.status_code == 400
    assert '<p class="finding ERROR" data-line="3"' in response.content.decode()
    assert not InlinePolicy.objects.filter(name="Broken").exists()


def test_it_refuses_an_inline_policy_over_the_users_size_quota(admin_client, objects):
    statements = ",".join(
        f'{{"Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::1:user/u{i:04}"}}'
        for i in range(40)
    )
    big = f'{{"Version": "2012-10-17", "Statement": [{statements}]}}'

    response = admin_client.post(
        reverse("console:user_inline_policy", args=["alice"]),
        {"policy_name": "Big", "policy_document": big},
    )

    assert response.status_code == 400
    assert not InlinePolicy.objects.filter(name="Big").exists()


def test_it_tags_and_untags_a_user_and_a_role(admin_client, objects):
    for kind, name in (("user", "alice"), ("role", "deployer")):
        response = admin_client.post(
            reverse(f"console:{kind}_tag", args=[name]), {"tags": "team=platform\ncost=42"}
        )
        assert response.status_code == 302
        admin_client.post(reverse(f"console:{kind}_untag", args=[name]), {"tag_key": "cost"})

    assert User.objects.get(name="alice").tags == [{"Key": "team", "Value": "platform"}]
    assert Role.objects.get(name="deployer").tags == [{"Key": "team", "Value": "platform"}]
    assert audited("iam:TagUser", objects["user"].arn)
    assert audited("iam:UntagUser", objects["user"].arn)
    assert audited("iam:TagRole", objects["role"].arn)
    assert audited("iam:UntagRole", objects["role"].arn)
    page = admin_client.get(
        reverse("console:user_detail", args=["alice"]), {"tab": "tags"}
    ).content.decode()
    assert "<td>team</td><td>platform</td>" in page
    assert 'Remove<span class="visually-hidden"> tag team</span>' in page


def test_it_refuses_a_reserved_tag_key_and_changes_nothing(admin_client, objects):
    response = admin_client.post(
        reverse("console:user_tag", args=["alice"]), {"tags": "aws:owner=me"}
    )

    assert response.status_code == 400
    assert User.objects.get(name="alice").tags == []
    assert not AuditEvent.objects.filter(action="iam:TagUser").exists()


def test_it_sets_and_removes_the_permissions_boundary(admin_client, objects):
    boundary = objects["policy"].arn
    for kind, name in (("user", "alice"), ("role", "deployer")):
        response = admin_client.post(
            reverse(f"console:{kind}_boundary", args=[name]), {"permissions_boundary": boundary}
        )
        assert response.status_code == 302

    assert User.objects.get(name="alice").permissions_boundary_id == objects["policy"].pk
    assert Role.objects.get(name="deployer").permissions_boundary_id == objects["policy"].pk
    assert audited("iam:PutUserPermissionsBoundary", objects["user"].arn)
    page = admin_client.get(reverse("console:role_detail", args=["deployer"])).content.decode()
    assert "ListThings</a> limits what the role's policies can allow" in page

    admin_client.post(reverse("console:user_boundary_delete", args=["alice"]))
    assert User.objects.get(name="alice").permissions_boundary_id is None
    assert audited("iam:DeleteUserPermissionsBoundary", objects["user"].arn)


def test_it_shows_the_services_error_for_a_boundary_that_does_not_exist(admin_client, objects):
    response = admin_client.post(
        reverse("console:user_boundary", args=["alice"]),
        {"permissions_boundary": "arn:aws:iam::111111111111:policy/Nope"},
    )

    assert response.status_code == 404
    assert "NoSuchEntity" in response.content.decode()
    assert User.objects.get(name="alice").permissions_boundary_id is None


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("console:user_inline_policy", "iam:PutUserPolicy"),
        ("console:user_tag", "iam:TagUser"),
        ("console:user_untag", "iam:UntagUser"),
        ("console:user_boundary", "iam:PutUserPermissionsBoundary"),
        ("console:user_boundary_delete", "iam:DeleteUserPermissionsBoundary"),
        ("console:user_inline_policy_delete", "iam:DeleteUserPolicy"),
    ],
)
def test_it_applies_the_permission_matrix_to_the_editing_views(
    client, nobody, reader, outsider, admin, objects, name, action
):
    url = reverse(name, args=["alice"])
    post = name != "console:user_inline_policy"

    def call():
        return client.post(url, {}) if post else client.get(url)

    assert call().status_code == 302  # anonymous: to sign-in
    sign_in(client, reader)  # may read, not write
    denied = call()
    assert denied.status_code == 403
    assert (
        f"User: arn:aws:iam::111111111111:user/reader is not authorized to perform: {action} "
        f"on resource: arn:aws:iam::111111111111:user/alice because no identity-based policy "
        f"allows the {action} action"
    ) in denied.content.decode()
    sign_in(client, outsider)  # another account's administrator: not there
    assert call().status_code == 404
    sign_in(client, admin)
    assert call().status_code in (200, 302, 400, 404)  # allowed: the service answers


def test_it_hides_the_editing_buttons_from_a_reader(client, reader, objects):
    sign_in(client, reader)

    page = client.get(reverse("console:user_detail", args=["alice"])).content.decode()

    assert "Add inline policy" not in page
    assert "Set boundary" not in page


# --- the editor's live validation ---------------------------------------------------------


def validate(client, document: str, **extra: str):
    return client.post(reverse("console:policy_validate"), {"policy_document": document, **extra})


def test_it_validates_live_for_a_user_who_may_edit_the_policy(client, account, objects):
    editor = make_user(account, "editor", FULL)  # IAMFullAccess: iam:*, no access-analyzer
    sign_in(client, editor)
    broken = LIST_THINGS.replace('"Effect": "Allow"', '"Effect": "Maybe"')

    response = validate(
        client,
        broken,
        validate_for_action="iam:CreatePolicyVersion",
        validate_for_resource=objects["policy"].arn,
    )

    assert response.status_code == 200
    assert '<p class="finding ERROR" data-line="3"' in response.content.decode()
    # The edit page sends what the check needs.
    page = client.get(reverse("console:policy_edit", args=[objects["policy"].arn])).content
    assert b'name="validate_for_action" value="iam:CreatePolicyVersion"' in page


def test_it_validates_live_in_the_create_and_inline_editors(client, account, objects):
    sign_in(client, make_user(account, "editor", FULL))

    created = validate(
        client,
        LIST_THINGS,
        validate_for_action="iam:CreatePolicy",
        validate_for_resource="arn:aws:iam::111111111111:policy/*",
    )
    inline = validate(
        client,
        LIST_THINGS,
        validate_for_action="iam:PutUserPolicy",
        validate_for_resource=objects["user"].arn,
    )

    assert created.status_code == inline.status_code == 200
    assert "No findings." in inline.content.decode()


def test_it_refuses_live_validation_to_a_reader(client, reader, objects):
    sign_in(client, reader)

    response = validate(
        client,
        LIST_THINGS,
        validate_for_action="iam:CreatePolicyVersion",
        validate_for_resource=objects["policy"].arn,
    )

    assert response.status_code == 403
    assert "is not authorized to perform: iam:CreatePolicyVersion on resource: " in (
        response.content.decode()
    )


def test_it_does_not_let_another_accounts_resource_authorize_validation(client, account):
    sign_in(client, make_user(account, "editor", FULL))

    response = validate(
        client,
        LIST_THINGS,
        validate_for_action="iam:CreatePolicyVersion",
        validate_for_resource="arn:aws:iam::222222222222:policy/Theirs",
    )

    assert response.status_code == 403
    assert "access-analyzer:ValidatePolicy on resource: *" in response.content.decode()


def test_it_validates_for_a_user_allowed_access_analyzer(client, account, root_actor):
    from policies import services as policy_services

    analyzer = policy_services.create_policy(
        account=account,
        policy_name="Analyzer",
        policy_document=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": "access-analyzer:ValidatePolicy", "Resource": "*"}]}'
        ),
        actor=root_actor,
    )
    sign_in(client, make_user(account, "analyst", analyzer.arn))

    assert validate(client, LIST_THINGS).status_code == 200
