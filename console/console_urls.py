"""The console's pages. Every view is wrapped in ``console.access.console_action``; the test
suite walks this list and fails on any view that is not."""

from django.urls import path

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

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    # Users
    path("users/", users.user_list, name="users"),
    path("users/create/", users.user_create, name="user_create"),
    path("users/<str:user_name>/", users.user_detail, name="user_detail"),
    path("users/<str:user_name>/groups/add/", users.user_add_to_group, name="user_add_to_group"),
    path(
        "users/<str:user_name>/groups/remove/",
        users.user_remove_from_group,
        name="user_remove_from_group",
    ),
    path("users/<str:user_name>/policies/attach/", users.user_attach_policy, name="user_attach"),
    path("users/<str:user_name>/policies/detach/", users.user_detach_policy, name="user_detach"),
    path("users/<str:user_name>/delete/", users.user_delete, name="user_delete"),
    path(
        "users/<str:user_name>/inline-policies/edit/",
        entities.user_inline_policy,
        name="user_inline_policy",
    ),
    path(
        "users/<str:user_name>/inline-policies/delete/",
        entities.user_inline_policy_delete,
        name="user_inline_policy_delete",
    ),
    path("users/<str:user_name>/tags/add/", entities.user_tag, name="user_tag"),
    path("users/<str:user_name>/tags/remove/", entities.user_untag, name="user_untag"),
    path("users/<str:user_name>/boundary/", entities.user_boundary, name="user_boundary"),
    path(
        "users/<str:user_name>/boundary/delete/",
        entities.user_boundary_delete,
        name="user_boundary_delete",
    ),
    # Groups
    path("groups/", groups.group_list, name="groups"),
    path("groups/create/", groups.group_create, name="group_create"),
    path("groups/<str:group_name>/", groups.group_detail, name="group_detail"),
    path("groups/<str:group_name>/members/add/", groups.group_add_member, name="group_add"),
    path(
        "groups/<str:group_name>/members/remove/", groups.group_remove_member, name="group_remove"
    ),
    path(
        "groups/<str:group_name>/policies/attach/", groups.group_attach_policy, name="group_attach"
    ),
    path(
        "groups/<str:group_name>/policies/detach/", groups.group_detach_policy, name="group_detach"
    ),
    path("groups/<str:group_name>/delete/", groups.group_delete, name="group_delete"),
    path(
        "groups/<str:group_name>/inline-policies/edit/",
        entities.group_inline_policy,
        name="group_inline_policy",
    ),
    path(
        "groups/<str:group_name>/inline-policies/delete/",
        entities.group_inline_policy_delete,
        name="group_inline_policy_delete",
    ),
    # Roles
    path("roles/", roles.role_list, name="roles"),
    path("roles/create/", roles.role_create, name="role_create"),
    path("roles/<str:role_name>/", roles.role_detail, name="role_detail"),
    path("roles/<str:role_name>/trust/", roles.role_update_trust, name="role_trust"),
    path("roles/<str:role_name>/settings/", roles.role_update, name="role_update"),
    path(
        "roles/<str:role_name>/instance-profile/",
        roles.role_add_instance_profile,
        name="role_instance_profile",
    ),
    path("roles/<str:role_name>/delete/", roles.role_delete, name="role_delete"),
    path(
        "roles/<str:role_name>/inline-policies/edit/",
        entities.role_inline_policy,
        name="role_inline_policy",
    ),
    path(
        "roles/<str:role_name>/inline-policies/delete/",
        entities.role_inline_policy_delete,
        name="role_inline_policy_delete",
    ),
    path("roles/<str:role_name>/tags/add/", entities.role_tag, name="role_tag"),
    path("roles/<str:role_name>/tags/remove/", entities.role_untag, name="role_untag"),
    path("roles/<str:role_name>/boundary/", entities.role_boundary, name="role_boundary"),
    path(
        "roles/<str:role_name>/boundary/delete/",
        entities.role_boundary_delete,
        name="role_boundary_delete",
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
