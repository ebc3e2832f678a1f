"""URLs of OIDC federation: the public sign-in steps and the providers' console pages."""

from django.urls import path

from identity import federation_views as views

# Included at the root without a namespace, beside "signin" (public: under /signin).
signin_urlpatterns = [
    path("signin/oidc/", views.signin_oidc_view, name="signin_oidc"),
    path("signin/oidc/start/", views.signin_oidc_start_view, name="signin_oidc_start"),
    # The redirect URI registered at providers: keep it stable.
    path("signin/oidc/callback", views.signin_oidc_callback_view, name="signin_oidc_callback"),
    path("signin/oidc/roles/", views.signin_oidc_roles_view, name="signin_oidc_roles"),
]

app_name = "federation"

# Included under /identity-providers/.
urlpatterns = [
    path("", views.providers_view, name="providers"),
    path("create/", views.provider_create_view, name="provider_create"),
    path("<int:provider_id>/", views.provider_view, name="provider"),
    path("<int:provider_id>/client-ids/add/", views.provider_add_client_view, name="add_client"),
    path(
        "<int:provider_id>/client-ids/remove/",
        views.provider_remove_client_view,
        name="remove_client",
    ),
    path("<int:provider_id>/thumbprints/", views.provider_thumbprints_view, name="thumbprints"),
    path("<int:provider_id>/keys/refresh/", views.provider_refresh_keys_view, name="refresh_keys"),
    path("<int:provider_id>/delete/", views.provider_delete_view, name="delete"),
]
