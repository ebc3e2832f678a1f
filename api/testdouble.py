"""Portcullis as a local IAM for infrastructure tests: chosen keys, and a fast reset.

``import_access_key`` brings in an access key with a given id and secret (what a test suite's
fixed credentials, or a migration from AWS, needs). ``reset`` deletes every IAM entity except
the accounts, their root users, the users holding imported keys with those keys and their own
policies, so a suite can start each test from the same state. The reset endpoint is off unless
``PORTCULLIS_ENABLE_RESET_ENDPOINT`` is set, and refused outside ``DEBUG`` unless
``PORTCULLIS_FORCE_RESET_ENDPOINT=1`` too: it is a test tool, not an administration feature.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from api.models import ImportedAccessKey
from audit.context import Actor
from audit.services import record_event
from identity import crypto, naming, quotas, services
from identity.errors import EntityAlreadyExists, LimitExceeded, NoSuchEntity, ValidationError
from identity.models import (
    AccessKey,
    Account,
    Group,
    InstanceProfile,
    MFADevice,
    OIDCProvider,
    PasswordPolicy,
    Role,
    TemporaryCredential,
    User,
)
from policies.models import (
    GroupPolicyAttachment,
    InlinePolicy,
    ManagedPolicy,
    RolePolicyAttachment,
    UserPolicyAttachment,
)
from policies.outbox import Kind, record_change

_KEY_ID = re.compile(r"^AKIA[A-Z0-9]{12,16}$")


def import_access_key(
    *, account_id: str, user_name: str, access_key_id: str, secret_access_key: str
) -> AccessKey:
    """Store an Active key with the given id and secret for ``user_name`` (created if absent)."""
    if not _KEY_ID.match(access_key_id):
        raise ValidationError(
            f"Access key id {access_key_id} must be AKIA followed by 12 to 16 upper-case letters "
            "or digits."
        )
    if not 16 <= len(secret_access_key) <= 128:
        raise ValidationError("A secret access key must be 16 to 128 characters long.")
    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        raise NoSuchEntity(f"Account {account_id} does not exist.")
    actor = Actor.system("import_access_key", account_id=account.id)
    with transaction.atomic():
        user = User.objects.filter(account=account, is_root=False, name__iexact=user_name).first()
        if user is None:
            user = services.create_user(account=account, user_name=user_name, actor=actor)
        user = User.objects.select_for_update().get(pk=user.pk)
        if AccessKey.objects.filter(pk=access_key_id).exists():
            raise EntityAlreadyExists(f"Access key {access_key_id} already exists.")
        if AccessKey.objects.filter(user=user).count() >= quotas.ACCESS_KEYS_PER_USER:
            raise LimitExceeded(
                f"Cannot exceed quota for AccessKeysPerUser: {quotas.ACCESS_KEYS_PER_USER}"
            )
        key = AccessKey.objects.create(
            access_key_id=access_key_id,
            user=user,
            secret_encrypted=crypto.encrypt(secret_access_key),
        )
        ImportedAccessKey.objects.create(access_key=key)
        record_event(
            actor=actor,
            action="portcullis:ImportAccessKey",
            resource_arn=user.arn,
            parameters={"UserName": user.name, "AccessKeyId": access_key_id},
            after={"AccessKeyId": access_key_id, "UserName": user.name, "Status": "Active"},
        )
    return key


def reset() -> dict[str, int]:
    """Delete every IAM entity but the accounts, their root users, the users holding imported
    keys, those keys and those users' own policies. One transaction; set-based deletes."""
    kept_users = set(ImportedAccessKey.objects.values_list("access_key__user_id", flat=True)) | set(
        User.objects.filter(is_root=True).values_list("pk", flat=True)
    )
    kept_policies = set(
        UserPolicyAttachment.objects.filter(user_id__in=kept_users).values_list(
            "policy_id", flat=True
        )
    ) | set(
        User.objects.filter(pk__in=kept_users, permissions_boundary__isnull=False).values_list(
            "permissions_boundary_id", flat=True
        )
    )
    counts: dict[str, int] = {}
    with transaction.atomic():

        def gone(name: str, queryset: Any) -> None:
            counts[name] = queryset.delete()[0]

        gone("sessions", TemporaryCredential.objects.all())
        gone(
            "access_keys",
            AccessKey.objects.filter(import_record__isnull=True),
        )
        gone("mfa_devices", MFADevice.objects.exclude(user_id__in=kept_users))
        gone(
            "inline_policies",
            InlinePolicy.objects.filter(
                Q(group__isnull=False) | Q(role__isnull=False) | ~Q(user_id__in=kept_users)
            ),
        )
        gone("group_attachments", GroupPolicyAttachment.objects.all())
        gone("role_attachments", RolePolicyAttachment.objects.all())
        gone(
            "user_attachments",
            UserPolicyAttachment.objects.exclude(user_id__in=kept_users),
        )
        gone("groups", Group.objects.all())
        gone("instance_profiles", InstanceProfile.objects.all())
        gone("roles", Role.objects.all())
        gone("users", User.objects.exclude(pk__in=kept_users))
        gone(
            "policies",
            ManagedPolicy.objects.exclude(account_id=naming.AWS_MANAGED_ACCOUNT).exclude(
                pk__in=kept_policies
            ),
        )
        gone("oidc_providers", OIDCProvider.objects.all())
        gone("password_policies", PasswordPolicy.objects.all())
        Account.objects.exclude(alias__isnull=True).update(alias=None)
        for policy in ManagedPolicy.objects.filter(pk__in=kept_policies):
            policy.attachment_count = UserPolicyAttachment.objects.filter(policy=policy).count()
            policy.permissions_boundary_usage_count = User.objects.filter(
                permissions_boundary=policy
            ).count()
            policy.save(update_fields=["attachment_count", "permissions_boundary_usage_count"])
        for account_id in Account.objects.exclude(pk=naming.AWS_MANAGED_ACCOUNT).values_list(
            "pk", flat=True
        ):
            record_change(kind=Kind.ACCOUNT, account_id=account_id, entity_id=account_id)
        record_event(
            actor=Actor.system("reset"),
            action="portcullis:Reset",
            parameters={},
            after=counts,
        )
    return counts


def reset_allowed() -> bool:
    if not settings.ENABLE_RESET_ENDPOINT:
        return False
    return settings.DEBUG or os.environ.get("PORTCULLIS_FORCE_RESET_ENDPOINT") == "1"


@csrf_exempt
@require_POST
def reset_view(request: HttpRequest) -> HttpResponse:
    """``POST /_portcullis/reset``: 404 unless enabled, so a production server shows nothing."""
    if not reset_allowed():
        return JsonResponse({"error": "Not found."}, status=404)
    started = time.perf_counter()
    counts = reset()
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    return HttpResponse(
        json.dumps({"reset": True, "deleted": counts, "elapsed_ms": elapsed_ms}),
        content_type="application/json",
    )


reset_view.login_required = False  # type: ignore[attr-defined]
