"""The Django project and the web console.

The Celery app is imported here so that ``shared_task`` binds to it whenever Django starts.
"""

from console.celery import app as celery_app

__all__ = ["celery_app"]
