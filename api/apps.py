from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "The AWS Query API and the JSON authorization API"
