"""Re-encrypt every secret at rest under the newest encryption key.

Rotation (identity.crypto): put a new key first in ``PORTCULLIS_ENCRYPTION_KEYS``, keep the old
ones after it, deploy, run this command, then drop the old keys. Until this has run, old keys
must stay: they are the only way to read secrets written under them.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.context import Actor
from audit.services import record_event
from identity import crypto
from identity.models import AccessKey, MFADevice, TemporaryCredential

# (model, primary key field, encrypted field, what the output calls it)
TARGETS = (
    (AccessKey, "access_key_id", "secret_encrypted", "access-key secrets"),
    (TemporaryCredential, "access_key_id", "secret_encrypted", "temporary-credential secrets"),
    (MFADevice, "pk", "seed_encrypted", "MFA seeds"),
)


class Command(BaseCommand):
    help = (
        "Re-encrypt access-key secrets, temporary-credential secrets and MFA seeds under the "
        "first key of PORTCULLIS_ENCRYPTION_KEYS."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size: int = options["batch_size"]
        counts: dict[str, int] = {}
        for model, pk_field, field, label in TARGETS:
            counts[label] = self._rotate(model, pk_field, field, batch_size)
            self.stdout.write(f"{label}: {counts[label]} re-encrypted")
        with transaction.atomic():
            record_event(
                actor=Actor.system("rotate_encryption_keys"),
                action="portcullis:RotateEncryptionKeys",
                parameters={"Counts": counts},
                after=counts,
            )

    def _rotate(self, model: Any, pk_field: str, field: str, batch_size: int) -> int:
        done = 0
        last: Any = None
        order = "pk"
        while True:
            with transaction.atomic():
                queryset = model.objects.order_by(order)
                if last is not None:
                    queryset = queryset.filter(pk__gt=last)
                # Lock the batch: a concurrent rotation or key update waits rather than being
                # overwritten with a stale ciphertext.
                rows = list(queryset.select_for_update(of=("self",)).only(field)[:batch_size])
                if not rows:
                    return done
                for row in rows:
                    token = getattr(row, field)
                    if not token:
                        continue
                    try:
                        rotated = crypto.rotate(token)
                    except crypto.InvalidToken as exc:
                        raise CommandError(
                            f"{model.__name__} {getattr(row, pk_field)}: no configured key "
                            "decrypts this secret; keep the old key in "
                            "PORTCULLIS_ENCRYPTION_KEYS."
                        ) from exc
                    model.objects.filter(pk=row.pk).update(**{field: rotated})
                    done += 1
                last = rows[-1].pk
