"""The console's own stored state: generated credential reports."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from identity.models import Account


class CredentialReport(models.Model):
    """An account's latest credential report (IAM keeps one per account, for 4 hours).

    ``state`` follows ``GenerateCredentialReport``'s ``State``: STARTED, INPROGRESS, COMPLETE.
    ``generation`` increases with each new generation, so a redelivered task for an older one
    changes nothing.
    """

    class State(models.TextChoices):
        STARTED = "STARTED"
        INPROGRESS = "INPROGRESS"
        COMPLETE = "COMPLETE"

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="credential_report"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.STARTED)
    generation = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField(default=timezone.now)
    generated_at = models.DateTimeField(null=True, blank=True)
    rows_done = models.PositiveIntegerField(default=0)
    rows_total = models.PositiveIntegerField(default=0)
    content = models.TextField(blank=True, default="")
