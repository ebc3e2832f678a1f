"""The Query API's URLs, included ahead of the console's (see ``api.views.root``)."""

from django.urls import path

from api import testdouble, views

urlpatterns = [
    path("", views.root, name="query_api_root"),
    path("_portcullis/reset", testdouble.reset_view, name="portcullis_reset"),
]
