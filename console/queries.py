"""The console's own reads: list pages with filters and sorting, the dashboard's figures.

Each function runs a fixed number of queries whatever the number of rows (annotations and
``prefetch_related`` instead of a query per row), and pages in the database.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connection
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
#
# The users list pages by *keyset* ("after this row" / "before this row"), never by OFFSET:
# page 2,000 costs what page 1 costs, because each page is one range read of an index that
# matches the sort (identity migration 0005 adds them; the name sort uses the unique index on
# ``(account, lower(name))``). Its total is counted separately, capped for filtered lists and
# cached briefly (see ``user_total``), so no page runs COUNT(*) over 100,000 rows each time.

COUNT_CAP = 1000  # a filtered list says "more than 1,000" rather than counting them all
CACHE_SECONDS = 60  # the longest a cached count or dashboard figure is served


@dataclass(frozen=True)
class SortSpec:
    key: str  # a field, or the ``sort_name`` alias
    descending: bool
    nullable: bool = False  # then nulls come first ascending and last descending


USER_SORTS: dict[str, SortSpec] = {
    "name": SortSpec("sort_name", False),
    "-name": SortSpec("sort_name", True),
    "created": SortSpec("created_at", False),
    "-created": SortSpec("created_at", True),
    "last_signin": SortSpec("password_last_used", False, nullable=True),
    "-last_signin": SortSpec("password_last_used", True, nullable=True),
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

    @property
    def narrowed(self) -> bool:
        return any(
            (
                self.name_prefix,
                self.path_prefix,
                self.group,
                self.has_mfa,
                self.has_password,
                self.key_older_than_days is not None,
            )
        )


def _enabled_mfa() -> QuerySet[MFADevice]:
    # Matches the partial index ``mfa_enabled_user`` (enabled devices by user).
    return MFADevice.objects.filter(user=OuterRef("pk"), enabled_at__isnull=False)


def users_queryset(account: Account, filters: UserFilters) -> QuerySet[User]:
    """The filtered users of an account, unordered; every filter is an indexed range or an
    EXISTS subquery (a semi-join the planner may drive from either side)."""
    qs = User.objects.filter(account=account, is_root=False).alias(sort_name=Lower("name"))
    if filters.name_prefix:
        # lower(name) LIKE 'p%': a range of the (account, lower(name)) index.
        qs = qs.filter(_prefix_range("sort_name", filters.name_prefix.lower()))
    if filters.path_prefix:
        qs = qs.filter(_prefix_range("path", filters.path_prefix))
    if filters.group:
        group_ids = Group.objects.filter(account=account).alias(lname=Lower("name"))
        group_ids = group_ids.filter(lname=Lower(Value(filters.group))).values("pk")
        qs = qs.filter(
            Exists(GroupMembership.objects.filter(user=OuterRef("pk"), group_id__in=group_ids))
        )
    if filters.has_mfa == "yes":
        qs = qs.filter(Exists(_enabled_mfa()))
    elif filters.has_mfa == "no":
        qs = qs.filter(~Exists(_enabled_mfa()))
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
    return qs


def _with_columns(qs: QuerySet[User]) -> QuerySet[User]:
    """The columns a row of the list shows."""
    return qs.only(
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


def _decorate(users: list[User]) -> None:
    """Groups, "has MFA" and the oldest active key for one page of users, in three indexed
    queries, as plain attributes (``group_names``, ``has_mfa``, ``oldest_active_key``).

    Not annotations on the page query: PostgreSQL plans an EXISTS column as a hashed subplan
    over every enabled device of every account when it expects many rows, even under LIMIT.
    Not ``prefetch_related`` either: a related manager per row costs more than the query.
    """
    ids = [u.pk for u in users]
    groups: dict[int, list[str]] = {}
    memberships = (
        GroupMembership.objects.filter(user_id__in=ids)
        .order_by("group__name")
        .values_list("user_id", "group__name")
    )
    for user_id, group_name in memberships:
        groups.setdefault(user_id, []).append(group_name)
    with_mfa = set(
        MFADevice.objects.filter(user_id__in=ids, enabled_at__isnull=False).values_list(
            "user_id", flat=True
        )
    )
    oldest = dict(
        AccessKey.objects.filter(user_id__in=ids, status=AccessKey.Status.ACTIVE)
        .values("user_id")
        .annotate(oldest=Min("created_at"))
        .values_list("user_id", "oldest")
    )
    for user in users:
        user.group_names = groups.get(user.pk, [])  # type: ignore[attr-defined]
        user.has_mfa = user.pk in with_mfa  # type: ignore[attr-defined]
        user.oldest_active_key = oldest.get(user.pk)  # type: ignore[attr-defined]


@functools.cache
def codepoint_collation() -> bool:
    """Whether the database orders text by code point (collation C, POSIX, C.UTF-8), so that a
    prefix is exactly a range ``[p, p')`` an index can read. Asked once per process."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT datcollate FROM pg_database WHERE datname = current_database()")
        row = cursor.fetchone()
    return bool(row) and row[0].lower() in {"c", "posix", "c.utf-8", "c.utf8", "ucs_basic"}


def _prefix_range(field: str, prefix: str) -> Q:
    """``field LIKE 'prefix%'``, plus the equivalent range when the collation allows, which
    PostgreSQL reads from the index (it only derives that range itself for collation "C")."""
    condition = Q(**{f"{field}__startswith": prefix})
    if prefix and codepoint_collation() and ord(prefix[-1]) < 0x10FFFF:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        condition &= Q(**{f"{field}__gte": prefix, f"{field}__lt": upper})
    return condition


@dataclass
class KeysetPage:
    """One page of a keyset-paginated list, with opaque tokens for its neighbours."""

    object_list: list[Any]
    next_token: str | None
    previous_token: str | None

    @property
    def has_next(self) -> bool:
        return self.next_token is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_token is not None


def encode_cursor(value: Any, pk: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([value, pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, spec: SortSpec) -> tuple[Any, int] | None:
    """The position a token names, or None when it is not one of ours (then the list starts
    at its first page: a bad token changes nothing else)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value, pk = json.loads(raw)
        if not isinstance(pk, int) or isinstance(pk, bool):
            return None
        if spec.key == "sort_name":
            if not isinstance(value, str):
                return None
        elif value is not None or not spec.nullable:
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                return None
        return value, pk
    except (ValueError, TypeError, binascii.Error):
        return None


def _sort_value(row: Any, spec: SortSpec) -> Any:
    return row.name.lower() if spec.key == "sort_name" else getattr(row, spec.key)


def _order(spec: SortSpec, descending: bool) -> list[Any]:
    key = F(spec.key)
    if spec.nullable:
        # Nulls first ascending, last descending: one index read forwards or backwards.
        first = key.desc(nulls_last=True) if descending else key.asc(nulls_first=True)
    else:
        first = key.desc() if descending else key.asc()
    return [first, F("pk").desc() if descending else F("pk").asc()]


def _after(spec: SortSpec, descending: bool, value: Any, pk: int) -> list[Q]:
    """Rows strictly after (value, pk) in the given order, as segments read one after the
    other: each is a single index range (an OR across the nulls would make PostgreSQL read
    the index from its start). The redundant ``>=``/``<=`` is what starts the read at the
    cursor."""
    gt, gte = ("lt", "lte") if descending else ("gt", "gte")
    key = spec.key
    nulls = Q(**{f"{key}__isnull": True})
    if value is None:
        later_nulls = nulls & Q(**{f"pk__{gt}": pk})
        # Ascending, the nulls come first: everything not null follows them.
        return [later_nulls] if descending else [later_nulls, Q(**{f"{key}__isnull": False})]
    same_or_later = Q(**{f"{key}__{gte}": value}) & (
        Q(**{f"{key}__{gt}": value}) | Q(**{key: value, f"pk__{gt}": pk})
    )
    if spec.nullable and descending:
        return [same_or_later, nulls]
    return [same_or_later]


def keyset_page(
    qs: QuerySet[Any],
    spec: SortSpec,
    *,
    after: str | None = None,
    before: str | None = None,
    per_page: int = PAGE_SIZE,
) -> KeysetPage:
    """Read one page after (or before) a cursor, one row more than shown to know whether
    there is another page."""
    backwards = False
    cursor = None
    if before:
        cursor = decode_cursor(before, spec)
        backwards = cursor is not None
    if cursor is None and after:
        cursor = decode_cursor(after, spec)
    descending = spec.descending != backwards
    order = _order(spec, descending)
    rows: list[Any] = []
    for segment in _after(spec, descending, *cursor) if cursor is not None else [Q()]:
        rows += list(qs.filter(segment).order_by(*order)[: per_page + 1 - len(rows)])
        if len(rows) > per_page:
            break
    more = len(rows) > per_page
    rows = rows[:per_page]
    if backwards:
        rows.reverse()
    if not rows:
        return KeysetPage([], None, None)

    def token(row: Any) -> str:
        return encode_cursor(_sort_value(row, spec), row.pk)

    if backwards:
        return KeysetPage(rows, token(rows[-1]), token(rows[0]) if more else None)
    return KeysetPage(rows, token(rows[-1]) if more else None, token(rows[0]) if cursor else None)


def users_page(
    account: Account, filters: UserFilters, *, after: str | None, before: str | None
) -> KeysetPage:
    spec = USER_SORTS.get(filters.sort, USER_SORTS["name"])
    page = keyset_page(
        _with_columns(users_queryset(account, filters)),
        spec,
        after=after,
        before=before,
        per_page=PAGE_SIZE,
    )
    _decorate(page.object_list)
    return page


def change_mark(account: Account) -> int:
    """The id of the account's newest audit event. Every change in an account (and every
    sign-in to it) writes one in its own transaction, so a cached figure keyed by this mark is
    dropped by the account's next change, and changes elsewhere leave it alone. One read of
    the ``(account_id, occurred_at)`` index. ``CACHE_SECONDS`` bounds what escapes it: a change
    that commits after a newer one was already read."""
    newest = (
        AuditEvent.objects.filter(account_id=account.id)
        .order_by("-occurred_at")
        .values_list("id", flat=True)
        .first()
    )
    return newest or 0


@dataclass(frozen=True)
class Total:
    count: int
    capped: bool  # True: at least ``count`` (more were not counted)
    counted_at: datetime


def user_total(account: Account, filters: UserFilters) -> Total:
    """How many users the list holds: exact when unfiltered, capped at ``COUNT_CAP`` when
    filtered; cached until the next change or ``CACHE_SECONDS``."""
    parts = [
        filters.name_prefix,
        filters.path_prefix,
        filters.group.lower(),
        filters.has_mfa,
        filters.has_password,
        str(filters.key_older_than_days),
    ]
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    key = f"console:users-total:{account.id}:{change_mark(account)}:{digest}"
    cached = cache.get(key)
    if isinstance(cached, Total):
        return cached
    qs = users_queryset(account, filters)
    if filters.narrowed:
        count = qs.values("pk")[: COUNT_CAP + 1].count()
        total = Total(min(count, COUNT_CAP), count > COUNT_CAP, timezone.now())
    else:
        total = Total(qs.count(), False, timezone.now())
    cache.set(key, total, CACHE_SECONDS)
    return total


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
    """The dashboard's figures, cached until the account's next audited change (the change
    mark) and for at most ``CACHE_SECONDS`` (the 90-day thresholds move with the clock)."""
    key = f"console:dashboard:{account.id}:{change_mark(account)}:{limit}"
    figures = cache.get(key)
    if not isinstance(figures, dict):
        figures = compute_dashboard_figures(account, limit=limit)
        cache.set(key, figures, CACHE_SECONDS)
    return figures


def compute_dashboard_figures(account: Account, *, limit: int = 10) -> dict[str, Any]:
    """The figures from the database, in a few aggregate queries whatever the number of users
    (one pass over the users, one over the enabled MFA index, one over the active keys, the
    wildcard policies), plus a sample query for each non-zero count. Plain values only, so
    they can be cached."""
    now = timezone.now()
    cutoff = now - timedelta(days=STALE_DAYS)
    users = User.objects.filter(account=account, is_root=False)
    dormant_q = _has_login_profile() & (
        Q(password_last_used__lt=cutoff)
        | Q(password_last_used__isnull=True, password_created_at__lt=cutoff)
        | Q(
            password_last_used__isnull=True, password_created_at__isnull=True, created_at__lt=cutoff
        )
    )
    counts = users.aggregate(total=Count("pk"), dormant=Count("pk", filter=dormant_q))
    enabled = MFADevice.objects.filter(account=account, enabled_at__isnull=False)
    root_mfa = enabled.filter(user__is_root=True).exists()
    # Distinct users with an enabled device (the root's among them, taken off below).
    with_mfa = enabled.filter(user__isnull=False).values("user_id").distinct().count()
    no_mfa_count = counts["total"] - (with_mfa - (1 if root_mfa else 0))
    keys = AccessKey.objects.filter(user__account=account, status=AccessKey.Status.ACTIVE)
    old_q = Q(created_at__lt=cutoff)
    unused_q = Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
    key_counts = keys.aggregate(old=Count("pk", filter=old_q), unused=Count("pk", filter=unused_q))

    def names(qs: QuerySet[User]) -> list[dict[str, str]]:
        return list(qs.order_by(Lower("name")).values("name", "path")[:limit])

    no_mfa_sample = names(users.filter(~Exists(_enabled_mfa()))) if no_mfa_count else []
    dormant_sample = names(users.filter(dormant_q)) if counts["dormant"] else []
    old_keys_sample = (
        list(
            keys.filter(old_q)
            .order_by("created_at")
            .values("access_key_id", "created_at", user_name=F("user__name"))[:limit]
        )
        if key_counts["old"]
        else []
    )
    return {
        "root_mfa": root_mfa,
        "user_count": counts["total"],
        "no_mfa_count": no_mfa_count,
        "no_mfa_sample": no_mfa_sample,
        "old_keys_count": key_counts["old"],
        "old_keys_sample": old_keys_sample,
        "unused_keys_count": key_counts["unused"],
        "dormant_count": counts["dormant"],
        "dormant_sample": dormant_sample,
        "star_policies": star_policies(account),
        "stale_days": STALE_DAYS,
        "computed_at": now,
        "cache_seconds": CACHE_SECONDS,
    }


def star_policies(account: Account) -> list[dict[str, Any]]:
    """Customer policies of this account, and built-ins attached in it, whose default version
    grants ``*:*``: the text narrows the candidates in the query, the engine decides."""
    attached_here = (
        Exists(
            UserPolicyAttachment.objects.filter(policy=OuterRef("policy"), user__account=account)
        )
        | Exists(
            GroupPolicyAttachment.objects.filter(policy=OuterRef("policy"), group__account=account)
        )
        | Exists(
            RolePolicyAttachment.objects.filter(policy=OuterRef("policy"), role__account=account)
        )
    )
    candidates = (
        PolicyVersion.objects.filter(is_default=True)
        .filter(Q(policy__account=account) | (Q(policy__account_id="aws") & attached_here))
        .filter(_WILDCARD_TEXT)
        .select_related("policy")
        .order_by("policy__name")
    )
    return [
        {"arn": v.policy.arn, "name": v.policy.name, "is_aws_managed": v.policy.is_aws_managed}
        for v in candidates
        if grants_everything(v.policy.arn, v.document)
    ]


def oldest_key_age_days(user: User, now: datetime | None = None) -> int | None:
    created = getattr(user, "oldest_active_key", None)
    if created is None:
        return None
    return ((now or timezone.now()) - created).days


__all__ = ["Min", "oldest_key_age_days"]
