"""What the Query API keeps of its own: which access keys were imported (the test double)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from identity.models import AccessKey


class ImportedAccessKey(models.Model):
    """An access key brought in by ``manage.py import_access_key`` with a chosen id and secret.

    The reset endpoint keeps these (and their users) so a test suite's configured credentials
    survive every reset.
    """

    access_key = models.OneToOneField(
        AccessKey, primary_key=True, on_delete=models.CASCADE, related_name="import_record"
    )
    imported_at = models.DateTimeField(default=timezone.now)
