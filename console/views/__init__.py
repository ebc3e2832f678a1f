"""Console views. Each view names the IAM action it performs; see console.access.

Views parse input, authorize through ``console.access``, call one service (the same functions
the Query API calls, which write the audit event) and render.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

__all__ = ["healthz"]


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness and database reachability for load balancers; reveals nothing else."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
