"""The console's own reads: list pages with filters and sorting, the dashboard's figures.

Each function runs a fixed number of queries whatever the number of rows (annotations and
``prefetch_related`` instead of a query per row), and pages in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import (
    Count,
    Exists,
    F,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Left, Lower, StrIndex
from django.utils import timezone

from audit.models import AuditEvent
from identity.models import AccessKey, Account, Group, GroupMembership, MFADevice, Role, User
from policies import engine
from policies.models import (
    GroupPolicyAttachment,
    InlinePolicy,
    ManagedPolicy,
    PolicyVersion,
    RolePolicyAttachment,
    UserPolicyAttachment,
)

PAGE_SIZE = 50
STALE_DAYS = 90


def paginate(queryset: QuerySet[Any], page: str | int | None, per_page: int = PAGE_SIZE) -> Page:
    return Paginator(queryset, per_page).get_page(page)


def _has_login_profile() -> Q:
    # An unusable password (no login profile) starts with "!" (Django's UNUSABLE_PASSWORD_PREFIX).
    return ~Q(password__startswith="!") & ~Q(password="")  # noqa: S106


# --- users --------------------------------------------------------------------------------

USER_SORTS = {
    "name": (Lower("name").asc(), "pk"),
    "-name": (Lower("name").desc(), "-pk"),
    "created": ("created_at", "pk"),
    "-created": ("-created_at", "-pk"),
    "last_signin": (F("password_last_used").asc(nulls_first=True), "pk"),
    "-last_signin": (F("password_last_used").desc(nulls_last=True), "-pk"),
}


@dataclass(frozen=True)
class UserFilters:
    name_prefix: str = ""
    path_prefix: str = ""
    group: str = ""
    has_mfa: str = ""  # "", "yes", "no"
    has_password: str = ""
    key_older_than_days: int | None = None
    sort: str = "name"


def users_queryset(account: Account, filters: UserFilters) -> QuerySet[User]:
    mfa = MFADevice.objects.filter(user=OuterRef("pk"), enabled_at__isnull=False)
    oldest_key = (
        AccessKey.objects.filter(user=OuterRef("pk"), status=AccessKey.Status.ACTIVE)
        .order_by("created_at")
        .values("created_at")[:1]
    )
    qs = (
        User.objects.filter(account=account, is_root=False)
        .annotate(has_mfa=Exists(mfa), oldest_active_key=Subquery(oldest_key))
        .prefetch_related(
            Prefetch("iam_groups", queryset=Group.objects.only("id", "name").order_by("name"))
        )
        .only(
            "id",
            "name",
            "path",
            "created_at",
            "password",
            "password_last_used",
            "account_id",
            "is_root",
            "unique_id",
        )
    )
    if filters.name_prefix:
        qs = qs.filter(name__istartswith=filters.name_prefix)
    if filters.path_prefix:
        qs = qs.filter(path__startswith=filters.path_prefix)
    if filters.group:
        qs = qs.filter(
            Exists(
                GroupMembership.objects.filter(
                    user=OuterRef("pk"), group__account=account, group__name__iexact=filters.group
                )
            )
        )
    if filters.has_mfa == "yes":
        qs = qs.filter(Exists(mfa))
    elif filters.has_mfa == "no":
        qs = qs.filter(~Exists(mfa))
    if filters.has_password == "yes":  # noqa: S105
        qs = qs.filter(_has_login_profile())
    elif filters.has_password == "no":  # noqa: S105
        qs = qs.exclude(_has_login_profile())
    if filters.key_older_than_days is not None:
        cutoff = timezone.now() - timedelta(days=filters.key_older_than_days)
        qs = qs.filter(
            Exists(
                AccessKey.objects.filter(
                    user=OuterRef("pk"), status=AccessKey.Status.ACTIVE, created_at__lt=cutoff
                )
            )
        )
    order = USER_SORTS.get(filters.sort, USER_SORTS["name"])
    return qs.order_by(*order)


def user_permissions(user: User) -> dict[str, Any]:
    """Every policy that reaches a user and where it came from, in four queries."""
    attached = list(
        UserPolicyAttachment.objects.filter(user=user)
        .select_related("policy")
        .order_by("policy__name")
    )
    inline = list(InlinePolicy.objects.filter(user=user).order_by("name"))
    groups = list(
        Group.objects.filter(memberships__user=user)
        .order_by("name")
        .prefetch_related(
            Prefetch(
                "policy_attachments",
                queryset=GroupPolicyAttachment.objects.select_related("policy").order_by(
                    "policy__name"
                ),
            ),
            Prefetch("inline_policies", queryset=InlinePolicy.objects.order_by("name")),
        )
    )
    return {
        "attached": [a.policy for a in attached],
        "inline": inline,
        "groups": groups,
        "boundary": user.permissions_boundary,
    }


def last_accessed_by_service(principal_arn: str) -> list[dict[str, Any]]:
    """Per service, when the principal last made an authorized call or decision — a simple
    aggregate of the audit trail's ``api`` and ``decision`` events."""
    service = Left("action", StrIndex("action", Value(":")) - 1)
    rows = (
        AuditEvent.objects.filter(actor_arn=principal_arn, category__in=("api", "decision"))
        .annotate(service=service)
        .values("service")
        .annotate(last=Max("occurred_at"), calls=Count("id"))
        .order_by("service")
    )
    return list(rows)


# --- groups, roles, policies ---------------------------------------------------------------


def groups_queryset(account: Account, name_prefix: str = "") -> QuerySet[Group]:
    qs = Group.objects.filter(account=account).annotate(
        member_count=Count("memberships", distinct=True)
    )
    if name_prefix:
        qs = qs.filter(name__istartswith=name_prefix)
    return qs.order_by(Lower("name"), "pk")


def roles_queryset(account: Account, name_prefix: str = "") -> QuerySet[Role]:
    qs = Role.objects.filter(account=account).only(
        "id", "name", "path", "account_id", "created_at", "description", "last_used_at"
    )
    if name_prefix:
        qs = qs.filter(name__istartswith=name_prefix)
    return qs.order_by(Lower("name"), "pk")


def policies_queryset(account: Account, kind: str = "", name_prefix: str = "") -> QuerySet:
    if kind == "builtin":
        qs = ManagedPolicy.objects.filter(account_id="aws")
    elif kind == "customer":
        qs = ManagedPolicy.objects.filter(account=account)
    else:
        qs = ManagedPolicy.objects.filter(Q(account=account) | Q(account_id="aws"))
    if name_prefix:
        qs = qs.filter(name__istartswith=name_prefix)
    return qs.order_by(Lower("name"), "pk")


def builtin_attachment_counts(account: Account, policy_ids: list[int]) -> dict[int, int]:
    """A built-in's attachment count *in this account* (its own counter spans all accounts)."""
    counts: dict[int, int] = {}
    for model, owner in (
        (UserPolicyAttachment, "user__account"),
        (GroupPolicyAttachment, "group__account"),
        (RolePolicyAttachment, "role__account"),
    ):
        rows = (
            model.objects.filter(policy_id__in=policy_ids, **{owner: account})
            .values("policy_id")
            .annotate(n=Count("id"))
        )
        for row in rows:
            counts[row["policy_id"]] = counts.get(row["policy_id"], 0) + row["n"]
    return counts


def policy_entities(policy: ManagedPolicy, account: Account) -> dict[str, list[Any]]:
    return {
        "users": list(
            User.objects.filter(policy_attachments__policy=policy, account=account).order_by(
                "name"
            )[:200]
        ),
        "groups": list(
            Group.objects.filter(policy_attachments__policy=policy, account=account).order_by(
                "name"
            )[:200]
        ),
        "roles": list(
            Role.objects.filter(policy_attachments__policy=policy, account=account).order_by(
                "name"
            )[:200]
        ),
    }


# --- dashboard ------------------------------------------------------------------------------

# Any document that grants "*:*" must spell an action of "*" or "*:*"; only those are parsed.
_WILDCARD_TEXT = Q(document__contains='"*"') | Q(document__contains='"*:*"')


def grants_everything(policy_id: str, document: str) -> bool:
    """Whether a document allows every action on every resource with no condition — asked of
    the engine with a made-up action and resource no statement can name on purpose."""
    try:
        policy_set = engine.compile_policy_set(
            identity=[engine.SourcedPolicy(policy_id=policy_id, document=document)]
        )
        principal = engine.Principal(
            arn="arn:aws:iam::000000000000:user/probe", account="0", kind="user"
        )
        decision = engine.evaluate(
            policy_set,
            engine.Request(
                principal=principal,
                action="portcullisprobe:Probe",
                resource="arn:aws:portcullisprobe:::probe",
            ),
        )
    except Exception:
        return False
    return decision.allowed


def dashboard_figures(account: Account, *, limit: int = 10) -> dict[str, Any]:
    now = timezone.now()
    cutoff = now - timedelta(days=STALE_DAYS)
    users = User.objects.filter(account=account, is_root=False)
    root = User.objects.filter(account=account, is_root=True).first()
    enabled_mfa = MFADevice.objects.filter(user=OuterRef("pk"), enabled_at__isnull=False)
    no_mfa = users.filter(~Exists(enabled_mfa))
    active_keys = AccessKey.objects.filter(user__account=account, status=AccessKey.Status.ACTIVE)
    old_keys = active_keys.filter(created_at__lt=cutoff)
    unused_keys = active_keys.filter(
        Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
    )
    dormant = users.filter(_has_login_profile()).filter(
        Q(password_last_used__lt=cutoff)
        | Q(password_last_used__isnull=True, password_created_at__lt=cutoff)
        | Q(
            password_last_used__isnull=True, password_created_at__isnull=True, created_at__lt=cutoff
        )
    )
    # Customer policies of this account, and built-ins attached in it, whose default version
    # grants *:*.
    attached_builtin = Q(policy__account_id="aws") & (
        Q(policy__user_attachments__user__account=account)
        | Q(policy__group_attachments__group__account=account)
        | Q(policy__role_attachments__role__account=account)
    )
    candidates = (
        PolicyVersion.objects.filter(is_default=True)
        .filter(Q(policy__account=account) | attached_builtin)
        .filter(_WILDCARD_TEXT)
        .select_related("policy")
        .distinct()
    )
    star_policies = [v.policy for v in candidates if grants_everything(v.policy.arn, v.document)]
    return {
        "root_mfa": root is not None
        and MFADevice.objects.filter(user=root, enabled_at__isnull=False).exists(),
        "user_count": users.count(),
        "no_mfa_count": no_mfa.count(),
        "no_mfa_sample": list(no_mfa.order_by(Lower("name")).only("name", "path")[:limit]),
        "old_keys_count": old_keys.count(),
        "old_keys_sample": list(old_keys.select_related("user").order_by("created_at")[:limit]),
        "unused_keys_count": unused_keys.count(),
        "dormant_count": dormant.count(),
        "dormant_sample": list(dormant.order_by(Lower("name")).only("name", "path")[:limit]),
        "star_policies": star_policies,
        "stale_days": STALE_DAYS,
    }


def oldest_key_age_days(user: User, now: datetime | None = None) -> int | None:
    created = getattr(user, "oldest_active_key", None)
    if created is None:
        return None
    return ((now or timezone.now()) - created).days


__all__ = ["Min", "oldest_key_age_days"]
