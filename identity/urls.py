"""Sign-in (top-level names, as ``LOGIN_URL`` expects) and "My security credentials"."""

from django.urls import path

from identity import admin_views, views

# Included without a namespace: ``settings.LOGIN_URL`` is "signin".
signin_urlpatterns = [
    path("signin/", views.signin_view, name="signin"),
    path("signin/root/", views.signin_root_view, name="signin_root"),
    path("signin/mfa/", views.signin_mfa_view, name="signin_mfa"),
    path("signin/reauth/", views.reauth_view, name="reauth"),
    path("signout/", views.signout_view, name="signout"),
]

app_name = "identity"

# Included under /my/.
urlpatterns = [
    path("", views.security_view, name="security"),
    path("password/", views.change_password_view, name="change_password"),
    path("mfa/enrol/", views.mfa_enrol_view, name="mfa_enrol"),
    path("mfa/<int:device_id>/remove/", views.mfa_remove_view, name="mfa_remove"),
    path("recovery-codes/", views.recovery_codes_view, name="recovery_codes"),
    path("access-keys/", views.access_keys_view, name="access_keys"),
    path("access-keys/create/", views.access_key_create_view, name="access_key_create"),
    path(
        "access-keys/<str:access_key_id>/status/",
        views.access_key_status_view,
        name="access_key_status",
    ),
    path(
        "access-keys/<str:access_key_id>/delete/",
        views.access_key_delete_view,
        name="access_key_delete",
    ),
    path("sessions/", views.sessions_view, name="sessions"),
    path("sessions/end/", views.sessions_end_view, name="sessions_end"),
]

# Administrators' actions on the users and groups of their account (identity.admin_views),
# included at the site root under the namespace "identity_admin", next to the console's pages.
admin_urlpatterns = [
    path(
        "users/<str:user_name>/console-access/",
        admin_views.user_console_access,
        name="user_console_access",
    ),
    path("users/<str:user_name>/password/", admin_views.user_password_create, name="password"),
    path(
        "users/<str:user_name>/password/reset/",
        admin_views.user_password_reset,
        name="password_reset",
    ),
    path(
        "users/<str:user_name>/password/delete/",
        admin_views.user_password_delete,
        name="password_delete",
    ),
    path("users/<str:user_name>/unlock/", admin_views.user_unlock, name="unlock"),
    path("users/<str:user_name>/enable/", admin_views.user_enable, name="enable"),
    path(
        "users/<str:user_name>/lockout-exemption/",
        admin_views.user_lockout_exemption,
        name="lockout_exemption",
    ),
    # A serial number is an ARN (arn:aws:iam::<acct>:mfa/<path><name>): slashes included.
    path(
        "users/<str:user_name>/mfa/<path:serial_number>/deactivate/",
        admin_views.user_mfa_deactivate,
        name="mfa_deactivate",
    ),
    path("users/<str:user_name>/sessions/end/", admin_views.user_sessions_end, name="sessions_end"),
    path(
        "groups/<str:group_name>/console-access/",
        admin_views.group_console_access,
        name="group_console_access",
    ),
    path(
        "groups/<str:group_name>/mfa-requirement/",
        admin_views.group_mfa_requirement,
        name="group_mfa_requirement",
    ),
]
