from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _forget_process_state(**kwargs: Any) -> None:
    # A migrate or flush (the test suite's reset between tests) may reuse key ids with other
    # rows behind them: what this process remembered about credentials no longer holds.
    from api import sigv4

    sigv4.forget_process_state()


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "The AWS Query API and the JSON authorization API"

    def ready(self) -> None:
        post_migrate.connect(_forget_process_state, dispatch_uid="api.forget_process_state")
