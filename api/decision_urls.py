"""The decision API's URLs (``api.decision``), mounted under ``/v1/``."""

from django.urls import path

from api import decision

urlpatterns = [
    path("authorize", decision.authorize, name="decision_authorize"),
    path("authorize/batch", decision.authorize_batch, name="decision_authorize_batch"),
    path("openapi.json", decision.openapi_document, name="decision_openapi"),
    path("ping", decision.ping, name="decision_ping"),
]
