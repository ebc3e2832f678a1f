"""The URL map: the console, sign-in, the Query API and the authorization API."""

from django.urls import include, path

from console import views
from identity import federation_urls
from identity import urls as identity_urls

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", include(identity_urls.signin_urlpatterns)),
    path("", include(federation_urls.signin_urlpatterns)),
    path("identity-providers/", include("identity.federation_urls")),
    path("my/", include("identity.urls")),
    # The decision API for applications (JSON, SigV4-signed) and its OpenAPI document.
    path("v1/", include("api.decision_urls")),
    # SigV4-signed requests to / are the IAM/STS Query API; everything else falls through.
    path("", include("api.urls")),
    # Administrators' sign-in actions on users and groups (sign-in issue), next to the console.
    path("", include((identity_urls.admin_urlpatterns, "identity_admin"))),
    path("", include("console.console_urls")),
]
