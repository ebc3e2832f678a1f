"""Stored policies: managed policies and their versions, attachments, inline policies, and the
propagation outbox.

A managed policy has up to five versions, one of them the default (IAM User Guide, "Versioning
IAM policies"). Built-in (AWS-managed) policies belong to the special account ``aws``.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from identity import naming
from identity.models import Account, Group, Role, User


class ManagedPolicy(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="managed_policies")
    name = models.CharField(max_length=128)
    path = models.CharField(max_length=512, default="/")
    unique_id = models.CharField(max_length=21, unique=True)
    description = models.CharField(max_length=1000, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    default_version_id = models.CharField(max_length=8, default="v1")
    # Version ids are never reused: v1, v2, ... even after deletions (as in IAM).
    next_version_number = models.PositiveIntegerField(default=2)
    # Kept in step by the attach/detach services, in the same transaction.
    attachment_count = models.PositiveIntegerField(default=0)
    permissions_boundary_usage_count = models.PositiveIntegerField(default=0)
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "account", Lower("name"), name="policy_name_unique_per_account_ci"
            )
        ]
        indexes = [models.Index(fields=["account", "name"], name="policy_account_name")]

    def __str__(self) -> str:
        return self.arn

    @property
    def arn(self) -> str:
        return naming.policy_arn(self.account_id, self.path, self.name)

    @property
    def is_aws_managed(self) -> bool:
        return self.account_id == naming.AWS_MANAGED_ACCOUNT


class PolicyVersion(models.Model):
    policy = models.ForeignKey(ManagedPolicy, on_delete=models.CASCADE, related_name="versions")
    version_id = models.CharField(max_length=8)
    document = models.TextField()
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["policy", "version_id"], name="policy_version_unique"),
            models.UniqueConstraint(
                fields=["policy"], condition=models.Q(is_default=True), name="one_default_version"
            ),
        ]


class UserPolicyAttachment(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="policy_attachments")
    policy = models.ForeignKey(
        ManagedPolicy, on_delete=models.PROTECT, related_name="user_attachments"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "policy"], name="user_attach_unique")
        ]


class GroupPolicyAttachment(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="policy_attachments")
    policy = models.ForeignKey(
        ManagedPolicy, on_delete=models.PROTECT, related_name="group_attachments"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "policy"], name="group_attach_unique")
        ]


class RolePolicyAttachment(models.Model):
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="policy_attachments")
    policy = models.ForeignKey(
        ManagedPolicy, on_delete=models.PROTECT, related_name="role_attachments"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["role", "policy"], name="role_attach_unique")
        ]


class InlinePolicy(models.Model):
    """An inline policy embedded in exactly one user, group or role. Names are unique per owner
    (case-sensitive, as ``PutUserPolicy`` replaces a policy of the same name)."""

    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="inline_policies"
    )
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.CASCADE, related_name="inline_policies"
    )
    role = models.ForeignKey(
        Role, null=True, blank=True, on_delete=models.CASCADE, related_name="inline_policies"
    )
    name = models.CharField(max_length=128)
    document = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, group__isnull=True, role__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=False, role__isnull=True)
                    | models.Q(user__isnull=True, group__isnull=True, role__isnull=False)
                ),
                name="inline_policy_one_owner",
            ),
            models.UniqueConstraint(fields=["user", "name"], name="inline_user_name_unique"),
            models.UniqueConstraint(fields=["group", "name"], name="inline_group_name_unique"),
            models.UniqueConstraint(fields=["role", "name"], name="inline_role_name_unique"),
        ]


class ChangeEvent(models.Model):
    """The propagation outbox: one row per committed change that can alter a decision.

    Written in the same transaction as the change, so propagation can be delayed but never
    lost. ``id`` is the monotonically increasing change sequence that compiled policy sets are
    stamped with. ``priority`` changes take access away (key deactivation, deletions, session
    revocation) and propagate first.
    """

    class Kind(models.TextChoices):
        USER = "user"  # one user's own policies, boundary, tags, groups, deletion
        GROUP = "group"  # a group's inline/attached policies: reaches its members
        ROLE = "role"  # a role's policies, boundary, trust, tags, deletion
        POLICY = "policy"  # a managed policy's default version: reaches every attachment
        ACCESS_KEY = "access_key"  # status change or deletion of a key
        SESSION = "session"  # STS session revocation
        ACCOUNT = "account"  # account-wide (password policy, MFA rule): everything in it

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    account_id = models.CharField(max_length=12)
    # The changed entity: a user/group/role/policy unique id, an access key id, ...
    entity_id = models.CharField(max_length=128)
    priority = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    parked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["id"],
                condition=models.Q(processed_at__isnull=True),
                name="changeevent_pending",
            )
        ]
