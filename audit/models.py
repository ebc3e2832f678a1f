"""The audit trail: append-only and tamper-evident.

Each event stores the SHA-256 of its canonical content chained to the previous event's hash,
so removing, reordering or editing any event breaks every later link; ``manage.py
verify_audit_chain`` names the first broken one. The application never updates or deletes an
event, and on PostgreSQL a trigger refuses UPDATE and DELETE outright.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    class Result(models.TextChoices):
        SUCCESS = "Success"
        FAILURE = "Failure"

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)
    # "change" (a write), "signin" (any sign-in attempt), "api" (a read call), "decision".
    category = models.CharField(max_length=16, db_index=True)
    account_id = models.CharField(max_length=12, blank=True, default="", db_index=True)
    actor_arn = models.CharField(max_length=2048, blank=True, default="")
    actor_kind = models.CharField(max_length=16, blank=True, default="")
    access_key_id = models.CharField(max_length=20, blank=True, default="")
    action = models.CharField(max_length=128, db_index=True)
    resource_arn = models.CharField(max_length=2048, blank=True, default="")
    request_parameters = models.JSONField(default=dict, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    result = models.CharField(max_length=8, choices=Result.choices)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    source_ip = models.CharField(max_length=45, blank=True, default="")
    user_agent = models.CharField(max_length=512, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        indexes = [
            models.Index(fields=["account_id", "-occurred_at"], name="audit_account_time"),
            models.Index(fields=["actor_arn", "-occurred_at"], name="audit_actor_time"),
        ]


class AuditChainHead(models.Model):
    """One row holding the newest hash; locking it orders concurrent writers on PostgreSQL."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_event_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)
