"""The IAM identity model: accounts, users, groups, roles, instance profiles, credentials.

Names are unique per account case-insensitively but keep their case (IAM User Guide, "IAM
identifiers"); that is enforced by unique constraints on ``Lower(name)``. Managed policies,
their versions, attachments and inline policies live in ``policies.models``.

Nothing here writes other models on save: all writes go through ``identity.services``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin

from identity import naming


class Account(models.Model):
    """An IAM account: a 12-digit id, an optional alias, one root user and its settings.

    The special account ``aws`` owns the built-in (AWS-managed) policies and has no users.
    """

    id = models.CharField(primary_key=True, max_length=12)
    alias = models.CharField(max_length=63, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    # Console session rules (sign-in issue): PCI DSS 8.2.8 asks for 15 minutes idle.
    session_idle_timeout_s = models.PositiveIntegerField(default=15 * 60)
    session_absolute_lifetime_s = models.PositiveIntegerField(default=12 * 60 * 60)
    require_mfa_for_console = models.BooleanField(default=False)
    # Lockout is beyond AWS (IAM has none); PCI DSS 8.3.4 asks for at most 10 tries, 30 minutes.
    lockout_threshold = models.PositiveSmallIntegerField(default=10)
    lockout_duration_s = models.PositiveIntegerField(default=30 * 60)
    disable_inactive_users_after_days = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(id__regex=r"^([0-9]{12}|aws)$"), name="account_id_shape"
            )
        ]

    def __str__(self) -> str:
        return self.alias or self.id

    @property
    def root_arn(self) -> str:
        return naming.root_arn(self.id)

    @property
    def is_aws_managed(self) -> bool:
        return self.id == naming.AWS_MANAGED_ACCOUNT


class PasswordPolicy(models.Model):
    """An account's password policy, the nine fields of ``UpdateAccountPasswordPolicy``.

    No row means no policy: ``GetAccountPasswordPolicy`` answers ``NoSuchEntity`` and sign-in
    applies IAM's default rules.
    """

    account = models.OneToOneField(
        Account, on_delete=models.CASCADE, related_name="password_policy"
    )
    minimum_password_length = models.PositiveSmallIntegerField(default=6)
    require_symbols = models.BooleanField(default=False)
    require_numbers = models.BooleanField(default=False)
    require_uppercase_characters = models.BooleanField(default=False)
    require_lowercase_characters = models.BooleanField(default=False)
    allow_users_to_change_password = models.BooleanField(default=False)
    max_password_age = models.PositiveSmallIntegerField(null=True, blank=True)
    password_reuse_prevention = models.PositiveSmallIntegerField(null=True, blank=True)
    hard_expiry = models.BooleanField(default=False)

    @property
    def expire_passwords(self) -> bool:
        return self.max_password_age is not None


class UserManager(BaseUserManager["User"]):
    def get_by_natural_key(self, unique_id: str) -> User:
        return self.get(unique_id=unique_id)


class User(AbstractBaseUser):
    """A person or workload in an account: an IAM user, or the account's root user.

    The root user (``is_root``) signs in with its email, has the ARN ``…:root`` and is never
    listed by ``ListUsers``. ``password`` unusable means no login profile (no console password).
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="users")
    name = models.CharField(max_length=64)
    path = models.CharField(max_length=512, default="/")
    unique_id = models.CharField(max_length=21, unique=True)
    is_root = models.BooleanField(default=False)
    email = models.EmailField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    tags = models.JSONField(default=list, blank=True)
    permissions_boundary = models.ForeignKey(
        "policies.ManagedPolicy",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bounded_users",
    )

    # Login profile (console password).
    password_created_at = models.DateTimeField(null=True, blank=True)
    password_last_changed = models.DateTimeField(null=True, blank=True)
    password_last_used = models.DateTimeField(null=True, blank=True)
    password_reset_required = models.BooleanField(default=False)

    # Lockout (sign-in issue), counted atomically with conditional UPDATEs.
    failed_signin_count = models.PositiveIntegerField(default=0)
    locked_until = models.DateTimeField(null=True, blank=True)
    lockout_exempt = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    # When an administrator last re-enabled the user: inactivity (PCI DSS 8.2.6) counts from
    # here too, so a re-enabled user is not disabled again by the next sweep.
    active_since = models.DateTimeField(null=True, blank=True)

    # Bumped to end every console session of the user (password change, admin action).
    session_generation = models.PositiveIntegerField(default=0)

    objects = UserManager()

    USERNAME_FIELD = "unique_id"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "account",
                Lower("name"),
                condition=models.Q(is_root=False),
                name="user_name_unique_per_account_ci",
            ),
            models.UniqueConstraint(
                "account", condition=models.Q(is_root=True), name="one_root_per_account"
            ),
        ]
        indexes = [
            models.Index(fields=["account", "name"], name="user_account_name"),
            models.Index(fields=["account", "path", "name"], name="user_account_path_name"),
            # The console's users list pages by keyset on these sorts (console.queries).
            models.Index(
                fields=["account", "created_at", "id"],
                condition=models.Q(is_root=False),
                name="user_console_created",
            ),
            models.Index(
                models.F("account"),
                models.F("password_last_used").desc(nulls_last=True),
                models.F("id").desc(),
                condition=models.Q(is_root=False),
                name="user_console_last_signin",
            ),
        ]

    def __str__(self) -> str:
        return self.arn

    @property
    def arn(self) -> str:
        if self.is_root:
            return naming.root_arn(self.account_id)
        return naming.user_arn(self.account_id, self.path, self.name)

    @property
    def has_login_profile(self) -> bool:
        return self.has_usable_password()


class Group(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="groups")
    name = models.CharField(max_length=128)
    path = models.CharField(max_length=512, default="/")
    unique_id = models.CharField(max_length=21, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(User, through="GroupMembership", related_name="iam_groups")
    # The account's "require MFA for console sign-in", for this group's members only (sign-in
    # issue): a member without a device is taken to enrolment after the password step.
    require_mfa_for_console = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "account", Lower("name"), name="group_name_unique_per_account_ci"
            )
        ]
        indexes = [models.Index(fields=["account", "name"], name="group_account_name")]

    def __str__(self) -> str:
        return self.arn

    @property
    def arn(self) -> str:
        return naming.group_arn(self.account_id, self.path, self.name)


class GroupMembership(models.Model):
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["group", "user"], name="membership_unique")]


class Role(models.Model):
    """An IAM role: assumed through STS under its trust policy, for up to its max duration."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="roles")
    name = models.CharField(max_length=64)
    path = models.CharField(max_length=512, default="/")
    unique_id = models.CharField(max_length=21, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    description = models.CharField(max_length=1000, blank=True, default="")
    assume_role_policy_document = models.TextField()
    max_session_duration = models.PositiveIntegerField(default=3600)
    tags = models.JSONField(default=list, blank=True)
    permissions_boundary = models.ForeignKey(
        "policies.ManagedPolicy",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="bounded_roles",
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_region = models.CharField(max_length=32, blank=True, default="")
    # "Revoke active sessions": sessions issued before this are denied (AWS adds an inline
    # AWSRevokeOlderSessions policy on aws:TokenIssueTime; we keep the instant and the policy).
    sessions_revoked_before = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "account", Lower("name"), name="role_name_unique_per_account_ci"
            )
        ]
        indexes = [models.Index(fields=["account", "name"], name="role_account_name")]

    def __str__(self) -> str:
        return self.arn

    @property
    def arn(self) -> str:
        return naming.role_arn(self.account_id, self.path, self.name)


class InstanceProfile(models.Model):
    """A container for at most one role (IAM quota: one role per instance profile)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="instance_profiles")
    name = models.CharField(max_length=128)
    path = models.CharField(max_length=512, default="/")
    unique_id = models.CharField(max_length=21, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    tags = models.JSONField(default=list, blank=True)
    role = models.ForeignKey(
        Role, null=True, blank=True, on_delete=models.PROTECT, related_name="instance_profiles"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "account", Lower("name"), name="instance_profile_name_unique_per_account_ci"
            )
        ]

    @property
    def arn(self) -> str:
        return naming.instance_profile_arn(self.account_id, self.path, self.name)


class AccessKey(models.Model):
    """A long-term access key. The secret is encrypted at rest (SigV4 needs it back) and is
    returned only by ``CreateAccessKey``."""

    class Status(models.TextChoices):
        ACTIVE = "Active"
        INACTIVE = "Inactive"

    access_key_id = models.CharField(max_length=20, primary_key=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_keys")
    secret_encrypted = models.TextField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_service = models.CharField(max_length=32, blank=True, default="")
    last_used_region = models.CharField(max_length=32, blank=True, default="")

    def __str__(self) -> str:
        return self.access_key_id


class TemporaryCredential(models.Model):
    """Credentials from STS (``ASIA…``): a session of a role or a ``GetSessionToken`` session.

    The secret is encrypted like a long-term key's; the session token is stored only as a hash
    (the caller presents it and we compare).
    """

    access_key_id = models.CharField(max_length=20, primary_key=True)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="sts_sessions")
    secret_encrypted = models.TextField()
    session_token_hash = models.CharField(max_length=64)
    # Whose session: a role session (role set) or a user's GetSessionToken session (user set).
    role = models.ForeignKey(
        Role, null=True, blank=True, on_delete=models.CASCADE, related_name="sessions"
    )
    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="sts_sessions"
    )
    session_name = models.CharField(max_length=64, blank=True, default="")
    source_identity = models.CharField(max_length=64, blank=True, default="")
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    mfa_authenticated = models.BooleanField(default=False)
    mfa_authenticated_at = models.DateTimeField(null=True, blank=True)
    # Session policies (inline JSON and managed ARNs) and session tags, as given to AssumeRole.
    session_policy = models.TextField(blank=True, default="")
    session_policy_arns = models.JSONField(default=list, blank=True)
    session_tags = models.JSONField(default=list, blank=True)
    transitive_tag_keys = models.JSONField(default=list, blank=True)
    # For role chaining and audit: the ARN that called AssumeRole.
    assumed_by_arn = models.CharField(max_length=2048, blank=True, default="")
    federated_subject = models.CharField(max_length=255, blank=True, default="")
    federated_provider_arn = models.CharField(max_length=2048, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="tempcred_expires")]


class MFADevice(ThrottlingMixin, Device):
    """A virtual (TOTP, RFC 6238) MFA device, serial ``arn:aws:iam::<acct>:mfa/<path><name>``.

    ``CreateVirtualMFADevice`` makes it unassigned (``user`` null); ``EnableMFADevice`` assigns
    it after two consecutive codes. The seed is encrypted at rest with ``identity.crypto`` —
    unlike django-otp's own TOTPDevice, which stores it in clear. ``last_t`` is the last
    accepted time step, so a code is accepted once.
    """

    # Overrides django-otp's required user: an unassigned virtual device has no user yet.
    user = models.ForeignKey(  # type: ignore[assignment]
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="mfa_devices",
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="mfa_devices")
    path = models.CharField(max_length=512, default="/")
    seed_encrypted = models.TextField()
    digits = models.PositiveSmallIntegerField(default=6)
    step = models.PositiveSmallIntegerField(default=30)
    tolerance = models.PositiveSmallIntegerField(default=1)
    last_t = models.BigIntegerField(default=-1)
    drift = models.SmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    enabled_at = models.DateTimeField(null=True, blank=True)
    tags = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("account", Lower("name"), name="mfa_name_unique_per_account_ci")
        ]
        # "Has MFA" for the console's users filter and dashboard, answered from the index alone.
        indexes = [
            models.Index(
                fields=["user", "account"],
                condition=models.Q(enabled_at__isnull=False, user__isnull=False),
                name="mfa_enabled_user",
            )
        ]

    @property
    def serial_number(self) -> str:
        return naming.mfa_arn(self.account_id, self.path, self.name)

    def get_throttle_factor(self) -> int:
        return 1


class RecoveryCode(models.Model):
    """A one-time recovery code, stored only as a hash and spent on use."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)


class PasswordHistory(models.Model):
    """Hashes of a user's previous passwords, for ``PasswordReusePrevention``."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="password_history")
    password_hash = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "-created_at"], name="pwhist_user_created")]


class OIDCProvider(models.Model):
    """An OpenID Connect identity provider the account trusts (``CreateOpenIDConnectProvider``)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="oidc_providers")
    url = models.CharField(max_length=255)
    client_ids = models.JSONField(default=list)
    thumbprints = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # A provider's amr=mfa claim may satisfy the account's MFA rule (per provider).
    mfa_claim_satisfies_mfa = models.BooleanField(default=False)
    # Discovery and keys, fetched by a task and cached here.
    discovery_document = models.JSONField(default=dict, blank=True)
    jwks = models.JSONField(default=dict, blank=True)
    jwks_fetched_at = models.DateTimeField(null=True, blank=True)
    jwks_fetch_error = models.TextField(blank=True, default="")
    # Console sign-in (beyond IAM, which federates the console only through SAML or a broker):
    # the client Portcullis itself is at this provider. No client id: no "Sign in with" button.
    # An empty secret means a public client (PKCE alone).
    console_client_id = models.CharField(max_length=255, blank=True, default="")
    console_client_secret_encrypted = models.TextField(blank=True, default="")
    display_name = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "url"], name="oidc_provider_unique_url")
        ]

    @property
    def host_and_path(self) -> str:
        return self.url.removeprefix("https://").removeprefix("http://").rstrip("/")

    @property
    def arn(self) -> str:
        return naming.oidc_provider_arn(self.account_id, self.host_and_path)


class ConsoleSession(models.Model):
    """A signed-in console session, so people can see theirs and end any of them.

    The Django session holds the state; this row is the list a person sees ("my active
    sessions") and the switch that ends a session from elsewhere: middleware signs out a
    session whose row is ended or missing.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="console_sessions")
    session_key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    source_ip = models.CharField(max_length=45, blank=True, default="")
    user_agent = models.CharField(max_length=512, blank=True, default="")
    mfa_authenticated = models.BooleanField(default=False)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "ended_at"], name="consolesession_user_ended")]
