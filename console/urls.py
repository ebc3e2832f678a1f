"""The URL map: the console, sign-in, the Query API and the authorization API."""

from django.urls import include, path

from console import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    # SigV4-signed requests to / are the IAM/STS Query API; everything else falls through.
    path("", include("api.urls")),
    path("", include("console.console_urls")),
]
