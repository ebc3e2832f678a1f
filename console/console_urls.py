"""The console's pages. Every view is wrapped in ``console.access.console_action``; the test
suite walks this list and fails on any view that is not."""

from collections.abc import Callable

from django.http import HttpResponse
from django.urls import URLPattern, path

from console.views import (
    account,
    audit,
    dashboard,
    entities,
    groups,
    policies,
    reports,
    roles,
    simulator,
    users,
)

app_name = "console"

Route = tuple[str, Callable[..., HttpResponse], str]  # (path below the entity, view, URL name)


def entity_routes(prefix: str, routes: list[Route]) -> list[URLPattern]:
    """One entity's pages: ``prefix`` (``users/<str:user_name>/``) + each route's path."""
    return [path(prefix + suffix, view, name=name) for suffix, view, name in routes]


def editing_routes(label: str, *, tags_and_boundary: bool) -> list[Route]:
    """The inline-policy, tag and boundary pages ``console.views.entities`` builds for each
    entity kind (``user_tag``, ``role_boundary_delete``, ...): the same paths for every kind;
    groups, as in IAM, have no tags or boundary."""
    suffixes = [
        ("inline-policies/edit/", "inline_policy"),
        ("inline-policies/delete/", "inline_policy_delete"),
    ]
    if tags_and_boundary:
        suffixes += [
            ("tags/add/", "tag"),
            ("tags/remove/", "untag"),
            ("boundary/", "boundary"),
            ("boundary/delete/", "boundary_delete"),
        ]
    return [
        (suffix, getattr(entities, f"{label}_{page}"), f"{label}_{page}")
        for suffix, page in suffixes
    ]


urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    # Users
    path("users/", users.user_list, name="users"),
    path("users/create/", users.user_create, name="user_create"),
    *entity_routes(
        "users/<str:user_name>/",
        [
            ("", users.user_detail, "user_detail"),
            ("groups/add/", users.user_add_to_group, "user_add_to_group"),
            ("groups/remove/", users.user_remove_from_group, "user_remove_from_group"),
            ("policies/attach/", users.user_attach_policy, "user_attach"),
            ("policies/detach/", users.user_detach_policy, "user_detach"),
            ("delete/", users.user_delete, "user_delete"),
            *editing_routes("user", tags_and_boundary=True),
        ],
    ),
    # Groups
    path("groups/", groups.group_list, name="groups"),
    path("groups/create/", groups.group_create, name="group_create"),
    *entity_routes(
        "groups/<str:group_name>/",
        [
            ("", groups.group_detail, "group_detail"),
            ("members/add/", groups.group_add_member, "group_add"),
            ("members/remove/", groups.group_remove_member, "group_remove"),
            ("policies/attach/", groups.group_attach_policy, "group_attach"),
            ("policies/detach/", groups.group_detach_policy, "group_detach"),
            ("delete/", groups.group_delete, "group_delete"),
            *editing_routes("group", tags_and_boundary=False),
        ],
    ),
    # Roles
    path("roles/", roles.role_list, name="roles"),
    path("roles/create/", roles.role_create, name="role_create"),
    *entity_routes(
        "roles/<str:role_name>/",
        [
            ("", roles.role_detail, "role_detail"),
            ("trust/", roles.role_update_trust, "role_trust"),
            ("settings/", roles.role_update, "role_update"),
            ("instance-profile/", roles.role_add_instance_profile, "role_instance_profile"),
            ("delete/", roles.role_delete, "role_delete"),
            *editing_routes("role", tags_and_boundary=True),
        ],
    ),
    # Policies (the ARN is the key: built-ins and customer policies may share a name)
    path("policies/", policies.policy_list, name="policies"),
    path("policies/create/", policies.policy_create, name="policy_create"),
    path("policies/validate/", policies.policy_validate, name="policy_validate"),
    path("policies/view/<path:policy_arn>", policies.policy_detail, name="policy_detail"),
    path("policies/edit/<path:policy_arn>", policies.policy_edit, name="policy_edit"),
    path(
        "policies/set-default/<path:policy_arn>",
        policies.policy_set_default,
        name="policy_set_default",
    ),
    path(
        "policies/delete-version/<path:policy_arn>",
        policies.policy_delete_version,
        name="policy_delete_version",
    ),
    # Tools and settings
    path("simulator/", simulator.simulator, name="simulator"),
    path("account/", account.account_settings, name="account"),
    path("account/password-policy/", account.account_password_policy, name="account_policy"),
    path("account/alias/", account.account_alias, name="account_alias"),
    path("account/sessions/", account.account_sessions, name="account_sessions"),
    path("credential-report/", reports.credential_report, name="credential_report"),
    path(
        "credential-report/status/",
        reports.credential_report_status,
        name="credential_report_status",
    ),
    path(
        "credential-report/generate/",
        reports.credential_report_generate,
        name="credential_report_generate",
    ),
    path(
        "credential-report/download/",
        reports.credential_report_download,
        name="credential_report_download",
    ),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/<int:event_id>/", audit.audit_detail, name="audit_detail"),
]
