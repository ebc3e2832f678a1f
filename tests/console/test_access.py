"""Every console view declares its IAM action and is decided by the engine."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, get_resolver, reverse

from audit.models import AuditEvent
from console import console_urls
from console.access import DeclaredAction
from tests.console.conftest import sign_in

# Views that only accept POST (they change something).
POST_ONLY = {
    "user_add_to_group",
    "user_remove_from_group",
    "user_attach",
    "user_detach",
    "user_delete",
    "group_add",
    "group_remove",
    "group_attach",
    "group_detach",
    "group_delete",
    "role_trust",
    "role_update",
    "role_instance_profile",
    "role_delete",
    "policy_set_default",
    "policy_delete_version",
    "policy_validate",
    "account_policy",
    "account_alias",
    "account_sessions",
    "credential_report_generate",
    "user_inline_policy_delete",
    "user_tag",
    "user_untag",
    "user_boundary",
    "user_boundary_delete",
    "group_inline_policy_delete",
    "role_inline_policy_delete",
    "role_tag",
    "role_untag",
    "role_boundary",
    "role_boundary_delete",
}


def console_patterns() -> list[URLPattern]:
    return [p for p in console_urls.urlpatterns if isinstance(p, URLPattern)]


def url_for(pattern: URLPattern, objects: dict, event_id: int) -> str:
    values = {
        "user_name": "alice",
        "group_name": "devs",
        "role_name": "deployer",
        "policy_arn": objects["policy"].arn,
        "event_id": event_id,
    }
    kwargs = {k: values[k] for k in pattern.pattern.converters}
    return reverse(f"console:{pattern.name}", kwargs=kwargs)


def test_it_declares_an_iam_action_on_every_console_view():
    undeclared = [
        p.name
        for p in console_patterns()
        if not isinstance(getattr(p.callback, "console_action", None), DeclaredAction)
    ]
    assert undeclared == []
    # The console's URLconf is the one the site serves.
    served = {p.name for p in get_resolver().namespace_dict["console"][1].url_patterns}
    assert served == {p.name for p in console_patterns()}


@pytest.mark.django_db
def test_it_denies_every_console_view_to_a_user_without_policies(client, nobody, objects):
    sign_in(client, nobody)
    event_id = AuditEvent.objects.filter(account_id="111111111111").first().pk
    for pattern in console_patterns():
        url = url_for(pattern, objects, event_id)
        response = client.post(url, {}) if pattern.name in POST_ONLY else client.get(url)
        assert response.status_code == 403, (pattern.name, response.status_code)
        body = response.content.decode()
        assert "User: arn:aws:iam::111111111111:user/nobody is not authorized to perform: " in body
        assert "because no identity-based policy allows the" in body, pattern.name


@pytest.mark.django_db
def test_it_sends_anonymous_visitors_to_sign_in(client, objects):
    for pattern in console_patterns():
        url = url_for(pattern, objects, 1)
        response = client.post(url, {}) if pattern.name in POST_ONLY else client.get(url)
        assert response.status_code == 302, pattern.name
        assert response["Location"].startswith("/signin/"), pattern.name


@pytest.mark.django_db
def test_it_shows_aws_exact_access_denied_message(client, nobody):
    sign_in(client, nobody)

    response = client.get(reverse("console:users"))

    assert response.status_code == 403
    assert (
        "User: arn:aws:iam::111111111111:user/nobody is not authorized to perform: "
        "iam:ListUsers on resource: * because no identity-based policy allows the "
        "iam:ListUsers action"
    ) in response.content.decode()


MATRIX = [
    ("console:user_detail", {"user_name": "alice"}, {"user_name": "alice"}),
    ("console:group_detail", {"group_name": "devs"}, {"group_name": "devs"}),
    ("console:role_detail", {"role_name": "deployer"}, {"role_name": "deployer"}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "kwargs", "_"), MATRIX)
def test_it_applies_the_permission_matrix(
    client, account, other_account, nobody, reader, outsider, objects, name, kwargs, _
):
    url = reverse(name, kwargs=kwargs)
    assert client.get(url).status_code == 302  # anonymous
    sign_in(client, nobody)
    assert client.get(url).status_code == 403  # denied
    sign_in(client, outsider)
    assert client.get(url).status_code == 404  # another account's object: not there
    sign_in(client, reader)
    assert client.get(url).status_code == 200  # allowed


@pytest.mark.django_db
def test_it_applies_the_matrix_to_policies(client, nobody, reader, outsider, objects):
    url = reverse("console:policy_detail", kwargs={"policy_arn": objects["policy"].arn})
    assert client.get(url).status_code == 302
    sign_in(client, nobody)
    assert client.get(url).status_code == 403
    sign_in(client, outsider)
    assert client.get(url).status_code == 404
    sign_in(client, reader)
    assert client.get(url).status_code == 200
    builtin_url = reverse(
        "console:policy_detail", kwargs={"policy_arn": "arn:aws:iam::aws:policy/IAMFullAccess"}
    )
    assert client.get(builtin_url).status_code == 200


@pytest.mark.django_db
def test_it_does_not_reveal_whether_a_name_exists_to_a_denied_user(client, nobody, objects):
    sign_in(client, nobody)

    existing = client.get(reverse("console:user_detail", kwargs={"user_name": "alice"}))
    missing = client.get(reverse("console:user_detail", kwargs={"user_name": "ghost"}))

    assert existing.status_code == missing.status_code == 403
    assert "on resource: arn:aws:iam::111111111111:user/ghost " in missing.content.decode()


@pytest.mark.django_db
def test_it_lets_the_root_user_do_everything(client, root, objects):
    sign_in(client, root)

    assert client.get(reverse("console:users")).status_code == 200
    assert client.get(reverse("console:audit")).status_code == 200


@pytest.mark.django_db
def test_it_hides_navigation_and_buttons_the_user_may_not_use(client, reader, admin):
    sign_in(client, reader)
    page = client.get(reverse("console:users")).content.decode()
    assert 'href="/users/"' in page
    assert 'href="/identity-providers/"' in page
    assert 'href="/audit/"' not in page  # cloudtrail:LookupEvents is not in IAMReadOnlyAccess
    providers = client.get(reverse("federation:providers")).content.decode()
    assert 'aria-label="Console"' in providers
    assert 'href="/users/"' in providers
    assert "Create user" not in page
    # ... and the server still refuses what the navigation hides.
    assert client.get(reverse("console:user_create")).status_code == 403

    sign_in(client, admin)
    page = client.get(reverse("console:users")).content.decode()
    assert 'href="/audit/"' in page
    assert "Create user" in page


@pytest.mark.django_db
def test_it_denies_with_an_explicit_deny_message(client, account, root_actor):
    from policies import services as policy_services
    from tests.console.conftest import make_user

    deny = policy_services.create_policy(
        account=account,
        policy_name="NoListing",
        policy_document=(
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", '
            '"Action": "iam:ListUsers", "Resource": "*"}]}'
        ),
        actor=root_actor,
    )
    user = make_user(account, "carol", "arn:aws:iam::aws:policy/AdministratorAccess", deny.arn)
    sign_in(client, user)

    response = client.get(reverse("console:users"))

    assert response.status_code == 403
    assert (
        "User: arn:aws:iam::111111111111:user/carol is not authorized to perform: iam:ListUsers "
        "on resource: * with an explicit deny in an identity-based policy"
    ) in response.content.decode()
