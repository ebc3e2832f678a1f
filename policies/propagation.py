"""Propagation: committed changes → the principals they reach → compiled sets in Redis.

A change (``policies.models.ChangeEvent``, written by ``policies.outbox.record_change`` in the
change's own transaction) is processed once, by whichever worker claims it first with
``SELECT … FOR UPDATE SKIP LOCKED``: it works out the principals the change reaches, reads
their policies for a whole chunk of principals in a handful of queries, compiles each set with
the engine (which is what validates it: a stored document that no longer parses fails the
change instead of becoming an allow) and publishes the *sources* to Redis, stamped with the
change sequence they reflect (``policies.store``). Then ``processed_at`` is set by a
conditional UPDATE, so a redelivered task changes nothing.

Reach (what a change touches):

==============  ==========================================================================
user            the user itself (a tombstone when deleted)
group           its members
role            the role (its sessions are decided from it)
policy          users it is attached to, members of groups it is attached to, roles it is
                attached to, users and roles using it as their permissions boundary
access_key      the key's entry (a revocation tombstone when inactive or deleted)
session         the STS credential's entry (a tombstone when revoked or gone)
account         every user and role of the account
==============  ==========================================================================

A change whose recompilation keeps failing is retried with backoff ``MAX_ATTEMPTS`` times and
then *parked* (``parked_at``, ``last_error``): ``status()`` shows it and the principals that did
compile are still published. Redis being unreachable is not the change's fault: it is retried
without counting, and the sweep picks it up later.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from identity import naming
from identity.models import (
    AccessKey,
    Account,
    Group,
    GroupMembership,
    Role,
    TemporaryCredential,
    User,
)
from policies import engine, store
from policies.models import (
    ChangeEvent,
    GroupPolicyAttachment,
    InlinePolicy,
    ManagedPolicy,
    PolicyVersion,
    RolePolicyAttachment,
    UserPolicyAttachment,
)
from policies.selectors import inline_policy_id

logger = logging.getLogger(__name__)

Kind = ChangeEvent.Kind

CHUNK_SIZE = 1000
MAX_ATTEMPTS = 5
# A pending change older than this is taken by the sweep (its message was lost, its worker
# died, or the broker was down when it committed).
STRANDED_AFTER_S = 3.0
SWEEP_BUDGET_S = 5.0


def backoff_s(attempt: int) -> float:
    """Retry delay after the ``attempt``-th failure: 0.5 s doubling, at most 10 s."""
    return min(10.0, 0.5 * (2 ** max(0, attempt - 1)))


class PrincipalCompileError(Exception):
    """Some principals' sets did not compile; the others were published."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        first = next(iter(failures.items()))
        super().__init__(
            f"{len(failures)} principal(s) failed to compile; first: {first[0]}: {first[1]}"
        )


# --- the stamp -----------------------------------------------------------------------------


def current_sequence() -> int:
    """The highest committed change sequence. Read *before* the policies it stamps: what is
    read afterwards reflects at least every change up to it (sequences are taken in commit
    order, see ``policies.outbox``)."""
    return ChangeEvent.objects.aggregate(m=Max("id"))["m"] or 0


# --- building entries for a chunk of principals -----------------------------------------


@dataclass
class _Managed:
    arn: str
    unique_id: str
    document: str


def _managed_by_pk(pks: Iterable[int]) -> dict[int, _Managed]:
    wanted = set(pks)
    if not wanted:
        return {}
    rows = PolicyVersion.objects.filter(policy_id__in=wanted, is_default=True).values_list(
        "policy_id",
        "document",
        "policy__account_id",
        "policy__path",
        "policy__name",
        "policy__unique_id",
    )
    return {
        pk: _Managed(naming.policy_arn(acct, path, name), uid, doc)
        for pk, doc, acct, path, name, uid in rows
    }


def _tags(tags: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


class _Compiler:
    """Compiles each distinct set once per task: 10,000 members of one group usually share
    one set of sources, so they share one compile."""

    def __init__(self) -> None:
        self._seen: dict[str, str | None] = {}

    def check(self, body: str) -> str | None:
        if body not in self._seen:
            try:
                engine.compile_policy_set_from_json(body)
                self._seen[body] = None
            except Exception as exc:  # a broken stored document, whatever the engine raised
                self._seen[body] = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"
        return self._seen[body]


def user_entries(
    user_pks: Sequence[int], *, stamp: int, compiler: _Compiler | None = None
) -> tuple[list[store.Entry], dict[str, str]]:
    """Entries for these users, from at most 7 queries whatever their number. Returns the entries
    that compiled and {unique id: error} for those that did not. The sources are ordered as
    ``policies.selectors.user_policy_sources`` orders them."""
    compiler = compiler or _Compiler()
    users = list(
        User.objects.filter(pk__in=user_pks).values(
            "pk",
            "unique_id",
            "name",
            "path",
            "account_id",
            "tags",
            "permissions_boundary_id",
            "is_active",
            "is_root",
        )
    )
    pks = [u["pk"] for u in users]
    groups_of: dict[int, list[int]] = defaultdict(list)
    for user_id, group_id in GroupMembership.objects.filter(user_id__in=pks).values_list(
        "user_id", "group_id"
    ):
        groups_of[user_id].append(group_id)
    group_ids = {g for gs in groups_of.values() for g in gs}
    # Fewer round trips for the common single-user change: no groups, no group queries.
    groups = (
        {
            g["pk"]: g
            for g in Group.objects.filter(pk__in=group_ids).values(
                "pk", "unique_id", "name", "path", "account_id"
            )
        }
        if group_ids
        else {}
    )
    user_inline: dict[int, list[tuple[str, str]]] = defaultdict(list)
    group_inline: dict[int, list[tuple[str, str]]] = defaultdict(list)
    inline_rows = InlinePolicy.objects.filter(
        Q(user_id__in=pks) | Q(group_id__in=group_ids)
    ).values_list("user_id", "group_id", "name", "document")
    for user_id, group_id, name, document in inline_rows:
        if user_id is not None:
            user_inline[user_id].append((name, document))
        else:
            group_inline[group_id].append((name, document))
    user_att: dict[int, set[int]] = defaultdict(set)
    for user_id, policy_id in UserPolicyAttachment.objects.filter(user_id__in=pks).values_list(
        "user_id", "policy_id"
    ):
        user_att[user_id].add(policy_id)
    group_att: dict[int, set[int]] = defaultdict(set)
    group_rows = (
        GroupPolicyAttachment.objects.filter(group_id__in=group_ids).values_list(
            "group_id", "policy_id"
        )
        if group_ids
        else []
    )
    for group_id, policy_id in group_rows:
        group_att[group_id].add(policy_id)
    policy_pks = {p for ps in user_att.values() for p in ps}
    policy_pks |= {p for ps in group_att.values() for p in ps}
    policy_pks |= {u["permissions_boundary_id"] for u in users if u["permissions_boundary_id"]}
    managed = _managed_by_pk(policy_pks)

    entries: list[store.Entry] = []
    failures: dict[str, str] = {}
    for user in users:
        account = user["account_id"]
        if user["is_root"]:
            arn = naming.root_arn(account)
            facts = {"kind": "root", "arn": arn, "account": account, "user_id": account}
            body = engine.policy_set_to_json([], None, None)
            entries.append(
                store.Entry(
                    key=user["unique_id"],
                    stamp=stamp,
                    arn=arn,
                    facts=facts,
                    body=body,
                    deps=(user["unique_id"], account),
                )
            )
            continue
        arn = naming.user_arn(account, user["path"], user["name"])
        identity: list[engine.SourcedPolicy] = [
            engine.SourcedPolicy(inline_policy_id(arn, name), doc)
            for name, doc in sorted(user_inline[user["pk"]])
        ]
        member_of = sorted(
            (groups[g] for g in groups_of[user["pk"]] if g in groups),
            key=lambda g: g["name"],
        )
        for group in member_of:
            group_arn = naming.group_arn(group["account_id"], group["path"], group["name"])
            identity.extend(
                engine.SourcedPolicy(inline_policy_id(group_arn, name), doc)
                for name, doc in sorted(group_inline[group["pk"]])
            )
        attached = set(user_att[user["pk"]])
        for group in member_of:
            attached |= group_att[group["pk"]]
        identity.extend(
            engine.SourcedPolicy(managed[p].arn, managed[p].document)
            for p in sorted(attached)
            if p in managed
        )
        boundary_pk = user["permissions_boundary_id"]
        boundary = None
        if boundary_pk is not None and boundary_pk in managed:
            boundary = [
                engine.SourcedPolicy(managed[boundary_pk].arn, managed[boundary_pk].document)
            ]
        body = engine.policy_set_to_json(identity, boundary, None)
        error = compiler.check(body)
        if error is not None:
            failures[user["unique_id"]] = error
            continue
        deps = [user["unique_id"], account]
        deps += [g["unique_id"] for g in member_of]
        deps += [
            managed[p].unique_id for p in sorted(attached | {boundary_pk} - {None}) if p in managed
        ]
        entries.append(
            store.Entry(
                key=user["unique_id"],
                stamp=stamp,
                arn=arn,
                facts={
                    "kind": "user",
                    "arn": arn,
                    "account": account,
                    "user_id": user["unique_id"],
                    "username": user["name"],
                    "tags": _tags(user["tags"]),
                    "active": user["is_active"],
                },
                body=body,
                deps=deps,
            )
        )
    return entries, failures


def role_entries(
    role_pks: Sequence[int], *, stamp: int, compiler: _Compiler | None = None
) -> tuple[list[store.Entry], dict[str, str]]:
    """Entries for these roles (as ``role_policy_sources`` orders them), in 4 queries."""
    compiler = compiler or _Compiler()
    roles = list(
        Role.objects.filter(pk__in=role_pks).values(
            "pk",
            "unique_id",
            "name",
            "path",
            "account_id",
            "tags",
            "permissions_boundary_id",
            "sessions_revoked_before",
        )
    )
    pks = [r["pk"] for r in roles]
    inline: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for role_id, name, document in InlinePolicy.objects.filter(role_id__in=pks).values_list(
        "role_id", "name", "document"
    ):
        inline[role_id].append((name, document))
    attached: dict[int, set[int]] = defaultdict(set)
    for role_id, policy_id in RolePolicyAttachment.objects.filter(role_id__in=pks).values_list(
        "role_id", "policy_id"
    ):
        attached[role_id].add(policy_id)
    policy_pks = {p for ps in attached.values() for p in ps}
    policy_pks |= {r["permissions_boundary_id"] for r in roles if r["permissions_boundary_id"]}
    managed = _managed_by_pk(policy_pks)
    entries: list[store.Entry] = []
    failures: dict[str, str] = {}
    for role in roles:
        account = role["account_id"]
        arn = naming.role_arn(account, role["path"], role["name"])
        identity = [
            engine.SourcedPolicy(inline_policy_id(arn, name), doc)
            for name, doc in sorted(inline[role["pk"]])
        ]
        identity.extend(
            engine.SourcedPolicy(managed[p].arn, managed[p].document)
            for p in sorted(attached[role["pk"]])
            if p in managed
        )
        boundary_pk = role["permissions_boundary_id"]
        boundary = None
        if boundary_pk is not None and boundary_pk in managed:
            boundary = [
                engine.SourcedPolicy(managed[boundary_pk].arn, managed[boundary_pk].document)
            ]
        body = engine.policy_set_to_json(identity, boundary, None)
        error = compiler.check(body)
        if error is not None:
            failures[role["unique_id"]] = error
            continue
        revoked = role["sessions_revoked_before"]
        entries.append(
            store.Entry(
                key=role["unique_id"],
                stamp=stamp,
                arn=arn,
                facts={
                    "kind": "role",
                    "arn": arn,
                    "account": account,
                    "role_id": role["unique_id"],
                    "name": role["name"],
                    "tags": _tags(role["tags"]),
                    "sessions_revoked_before": revoked.isoformat() if revoked else None,
                },
                body=body,
                deps=[
                    role["unique_id"],
                    account,
                    *(
                        managed[p].unique_id
                        for p in sorted(attached[role["pk"]] | {boundary_pk} - {None})
                        if p in managed
                    ),
                ],
            )
        )
    return entries, failures


def credential_entry(access_key_id: str, *, stamp: int) -> store.Entry:
    """A long-term key's or an STS credential's entry: active facts, or a revocation
    tombstone when it is inactive, expired or gone."""
    if access_key_id.startswith(naming.TEMPORARY_ACCESS_KEY_PREFIX):
        credential = (
            TemporaryCredential.objects.filter(access_key_id=access_key_id)
            .values("account_id", "expires_at", "role__unique_id", "user__unique_id")
            .first()
        )
        if credential is None or credential["expires_at"] <= timezone.now():
            return store.Entry(key=access_key_id, stamp=stamp, tomb=True, deps=(access_key_id,))
        return store.Entry(
            key=access_key_id,
            stamp=stamp,
            facts={
                "kind": "session",
                "status": "Active",
                "account": credential["account_id"],
                "principal": credential["role__unique_id"] or credential["user__unique_id"],
            },
            body="",
            deps=(access_key_id,),
        )
    key = (
        AccessKey.objects.filter(access_key_id=access_key_id)
        .values("status", "user__unique_id", "user__account_id", "user__is_active")
        .first()
    )
    if key is None or key["status"] != AccessKey.Status.ACTIVE or not key["user__is_active"]:
        return store.Entry(key=access_key_id, stamp=stamp, tomb=True, deps=(access_key_id,))
    return store.Entry(
        key=access_key_id,
        stamp=stamp,
        facts={
            "kind": "access_key",
            "status": key["status"],
            "account": key["user__account_id"],
            "principal": key["user__unique_id"],
        },
        body="",
        deps=(access_key_id, key["user__unique_id"]),
    )


# --- reach ---------------------------------------------------------------------------------


@dataclass
class Reach:
    user_pks: set[int] = field(default_factory=set)
    role_pks: set[int] = field(default_factory=set)
    # Principals that no longer exist: their entries become tombstones.
    gone: set[str] = field(default_factory=set)
    credentials: set[str] = field(default_factory=set)

    @property
    def size(self) -> int:
        return len(self.user_pks) + len(self.role_pks) + len(self.gone) + len(self.credentials)


def reach(kind: str, entity_id: str, account_id: str) -> Reach:
    result = Reach()
    if kind == Kind.USER:
        pk = User.objects.filter(unique_id=entity_id).values_list("pk", flat=True).first()
        if pk is None:
            result.gone.add(entity_id)
        else:
            result.user_pks.add(pk)
    elif kind == Kind.GROUP:
        result.user_pks |= set(
            GroupMembership.objects.filter(group__unique_id=entity_id).values_list(
                "user_id", flat=True
            )
        )
    elif kind == Kind.ROLE:
        pk = Role.objects.filter(unique_id=entity_id).values_list("pk", flat=True).first()
        if pk is None:
            result.gone.add(entity_id)
        else:
            result.role_pks.add(pk)
    elif kind == Kind.POLICY:
        policy_pk = (
            ManagedPolicy.objects.filter(unique_id=entity_id).values_list("pk", flat=True).first()
        )
        if policy_pk is not None:
            result.user_pks |= set(
                UserPolicyAttachment.objects.filter(policy_id=policy_pk).values_list(
                    "user_id", flat=True
                )
            )
            result.user_pks |= set(
                GroupMembership.objects.filter(
                    group__policy_attachments__policy_id=policy_pk
                ).values_list("user_id", flat=True)
            )
            result.user_pks |= set(
                User.objects.filter(permissions_boundary_id=policy_pk).values_list("pk", flat=True)
            )
            result.role_pks |= set(
                RolePolicyAttachment.objects.filter(policy_id=policy_pk).values_list(
                    "role_id", flat=True
                )
            )
            result.role_pks |= set(
                Role.objects.filter(permissions_boundary_id=policy_pk).values_list("pk", flat=True)
            )
    elif kind in (Kind.ACCESS_KEY, Kind.SESSION):
        result.credentials.add(entity_id)
    elif kind == Kind.ACCOUNT:
        accounts = (
            Account.objects.all() if entity_id == "*" else Account.objects.filter(pk=account_id)
        )
        result.user_pks |= set(
            User.objects.filter(account__in=accounts).values_list("pk", flat=True)
        )
        result.role_pks |= set(
            Role.objects.filter(account__in=accounts).values_list("pk", flat=True)
        )
        result.credentials |= set(
            AccessKey.objects.filter(user__account__in=accounts).values_list(
                "access_key_id", flat=True
            )
        )
    return result


def _chunks(items: Iterable[int], size: int) -> Iterable[list[int]]:
    ordered = sorted(items)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def publish_reach(target: Reach) -> tuple[int, dict[str, str]]:
    """Compile and publish everything ``target`` reaches, chunk by chunk (each chunk stamped
    with the sequence read just before its own reads). Returns (entries written, failures)."""
    compiler = _Compiler()
    written = 0
    failures: dict[str, str] = {}
    for chunk in _chunks(target.user_pks, CHUNK_SIZE):
        stamp = current_sequence()
        entries, failed = user_entries(chunk, stamp=stamp, compiler=compiler)
        failures.update(failed)
        written += store.publish(entries)
    for chunk in _chunks(target.role_pks, CHUNK_SIZE):
        stamp = current_sequence()
        entries, failed = role_entries(chunk, stamp=stamp, compiler=compiler)
        failures.update(failed)
        written += store.publish(entries)
    if target.gone or target.credentials:
        stamp = current_sequence()
        extra = [
            store.Entry(key=uid, stamp=stamp, tomb=True, deps=(uid,)) for uid in sorted(target.gone)
        ]
        extra += [credential_entry(akid, stamp=stamp) for akid in sorted(target.credentials)]
        written += store.publish(extra)
    return written, failures


# --- processing one change -----------------------------------------------------------------


class Outcome:
    DONE = "done"  # processed now
    SKIPPED = "skipped"  # already processed, parked, or another worker holds it
    RETRY = "retry"  # failed; retry later
    UNAVAILABLE = "unavailable"  # Redis unreachable; retry later, uncounted
    PARKED = "parked"  # failed for the last time


def _process_claimed(change: ChangeEvent) -> str:
    """Publish one claimed change (its row locked by the caller's transaction)."""
    target = reach(change.kind, change.entity_id, change.account_id)
    _, failures = publish_reach(target)
    if failures:
        raise PrincipalCompileError(failures)
    ChangeEvent.objects.filter(pk=change.pk, processed_at__isnull=True).update(
        processed_at=timezone.now()
    )
    return Outcome.DONE


def _claim(queryset: Any) -> ChangeEvent | None:
    return (
        queryset.filter(processed_at__isnull=True, parked_at__isnull=True)
        .select_for_update(skip_locked=True)
        .first()
    )


def _run(select: Any) -> tuple[str, int | None]:
    """Claim one change with ``select`` and process it. Failures are recorded on the row."""
    change_id: int | None = None
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Never queue behind a table lock (TRUNCATE, DDL) long enough to deadlock with
                # it: give up and let the retry or the sweep take the change again.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '500ms'")
            change = _claim(select)
            if change is None:
                return Outcome.SKIPPED, None
            change_id = change.pk
            return _process_claimed(change), change_id
    except store.StoreUnavailable as exc:
        # Not the change's fault: leave it pending, uncounted.
        if change_id is not None:
            _note_error(change_id, f"store unavailable: {exc}")
        return Outcome.UNAVAILABLE, change_id
    except OperationalError as exc:
        # A lock timeout, a deadlock, a dropped connection: the database's moment, not the
        # change's fault. Pending, uncounted.
        logger.warning("propagation of change %s deferred: %s", change_id, exc)
        return Outcome.UNAVAILABLE, change_id
    except PrincipalCompileError as exc:
        assert change_id is not None
        return _record_failure(change_id, str(exc)), change_id
    except Exception as exc:
        logger.exception("propagation of change %s failed", change_id)
        if change_id is None:
            raise
        return _record_failure(change_id, f"{type(exc).__name__}: {exc}"), change_id


def _note_error(change_id: int, error: str) -> None:
    ChangeEvent.objects.filter(pk=change_id).update(last_error=error[:2000])


def _record_failure(change_id: int, error: str) -> str:
    with transaction.atomic():
        ChangeEvent.objects.filter(pk=change_id, processed_at__isnull=True).update(
            attempts=F("attempts") + 1, last_error=error[:2000]
        )
        parked = ChangeEvent.objects.filter(
            pk=change_id,
            processed_at__isnull=True,
            parked_at__isnull=True,
            attempts__gte=MAX_ATTEMPTS,
        ).update(parked_at=timezone.now())
    if parked:
        logger.error("change %s parked after %s attempts: %s", change_id, MAX_ATTEMPTS, error)
        return Outcome.PARKED
    attempts = ChangeEvent.objects.filter(pk=change_id).values_list("attempts", flat=True).first()
    try:
        store.set_value(f"retry:{change_id}", "1", ex=max(1, round(backoff_s(attempts or 1))))
    except Exception:
        logger.debug("could not note the retry delay of change %s", change_id)
    return Outcome.RETRY


def propagate_change(*, change_id: int) -> str:
    """Process change ``change_id`` unless it is done, parked or held by another worker."""
    if not store.enabled():
        # No store (embedded default): decisions read the database, which is current.
        ChangeEvent.objects.filter(pk=change_id, processed_at__isnull=True).update(
            processed_at=timezone.now()
        )
        return Outcome.DONE
    outcome, _ = _run(ChangeEvent.objects.filter(pk=change_id))
    return outcome


# --- the sweep -----------------------------------------------------------------------------


def _entity_marks(rows: Iterable[tuple[int, str, str, str]]) -> list[tuple[str, int]]:
    marks = []
    for seq, kind, entity_id, account_id in rows:
        marks.append((account_id if kind == Kind.ACCOUNT else entity_id, seq))
    return marks


def sweep(*, budget_s: float = SWEEP_BUDGET_S, stranded_after_s: float = STRANDED_AFTER_S) -> int:
    """The periodic safety net. Re-marks every pending change in Redis and records that it did
    (``fresh_at``, which keeps trusted entries trusted), then processes stranded changes
    (pending for longer than ``stranded_after_s``) itself, oldest first, priority first, until
    its time budget is spent. Returns how many it processed."""
    if not store.enabled():
        ChangeEvent.objects.filter(processed_at__isnull=True).update(processed_at=timezone.now())
        return 0
    started = time.monotonic()
    _rebuild_if_lost()
    read_at = time.time()
    pending = list(
        ChangeEvent.objects.filter(processed_at__isnull=True)
        .order_by("id")
        .values_list("id", "kind", "entity_id", "account_id")[:20000]
    )
    store.mark_many(_entity_marks(pending), fresh_at=read_at if len(pending) < 20000 else None)
    if not pending:
        # Nothing pending, so nothing stranded: the usual sweep ends here, one query in, and
        # leaves the CPU to the decisions (it runs every second on the same machines).
        return 0
    processed = 0
    skip: set[int] = set()
    cutoff = timezone.now() - timedelta(seconds=stranded_after_s)
    while time.monotonic() - started < budget_s:
        candidates = ChangeEvent.objects.filter(
            processed_at__isnull=True, parked_at__isnull=True, created_at__lt=cutoff
        ).exclude(pk__in=skip)
        delayed = _in_backoff(
            list(candidates.order_by("-priority", "id").values_list("pk", flat=True)[:200])
        )
        skip |= delayed
        select = candidates.exclude(pk__in=delayed).order_by("-priority", "id")
        outcome, change_id = _run(select)
        if change_id is None:
            break
        skip.add(change_id)
        if outcome == Outcome.DONE:
            processed += 1
        elif outcome == Outcome.UNAVAILABLE:
            break
    return processed


def _rebuild_if_lost() -> None:
    """Redis lost its data (flushed, restarted without persistence, replaced): ``built_at`` is
    gone with everything else, so publish every principal again. Decisions are computed from
    the database meanwhile."""
    if store.get_float("built_at") is not None:
        return
    if not store.set_value("rebuilding", "1", ex=120, nx=True):
        return  # another worker is on it
    try:
        started = time.time()
        written, failures = rebuild()
        store.set_value("built_at", f"{started:.3f}")
        logger.warning(
            "compiled-policy store was empty: rebuilt %s entries (%s failed)",
            written,
            len(failures),
        )
    finally:
        store.delete_keys("rebuilding")


def _in_backoff(ids: list[int]) -> set[int]:
    if not ids:
        return set()
    ns = store.namespace()
    try:
        values = store.client().mget([f"{ns}retry:{i}" for i in ids])
    except Exception:
        return set()
    return {i for i, v in zip(ids, values, strict=True) if v is not None}


# --- rebuild and status --------------------------------------------------------------------


def rebuild(*, account_id: str | None = None) -> tuple[int, dict[str, str]]:
    """Publish every principal (of one account, or all) now, from the database."""
    target = reach(Kind.ACCOUNT, "*" if account_id is None else account_id, account_id or "")
    return publish_reach(target)


def _age(moment: datetime | float | None) -> float | None:
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return round((timezone.now() - moment).total_seconds(), 3)
    return round(time.time() - moment, 3)


# Without Redis (the embedded default) heartbeats live in the Django cache, one entry holding
# every worker's last beat.
HEARTBEAT_CACHE_KEY = "propagation:workers"
HEARTBEAT_LIVE_S = 15.0


def record_heartbeat(hostname: str) -> None:
    """A worker is alive: in Redis when there is a store, else in the Django cache."""
    if store.enabled():
        store.heartbeat(hostname=hostname, ttl_s=int(HEARTBEAT_LIVE_S))
        store.reset_circuit()
        return
    from django.core.cache import cache

    now = time.time()
    beats = cache.get(HEARTBEAT_CACHE_KEY) or {}
    beats = {h: t for h, t in beats.items() if now - t < HEARTBEAT_LIVE_S}
    beats[hostname] = now
    cache.set(HEARTBEAT_CACHE_KEY, beats, timeout=int(HEARTBEAT_LIVE_S) * 4)


def _cached_heartbeats() -> tuple[float | None, list[str]]:
    from django.core.cache import cache

    beats: dict[str, float] = cache.get(HEARTBEAT_CACHE_KEY) or {}
    now = time.time()
    live = sorted(h for h, t in beats.items() if now - t < HEARTBEAT_LIVE_S)
    return (max(beats.values()) if beats else None), live


def queue_depths() -> dict[str, int]:
    """Messages waiting per queue, asked of the broker itself (Redis or the embedded default's
    folder), wherever ``CELERY_BROKER_URL`` points."""
    from kombu.exceptions import ChannelError

    from console.celery import app

    depths: dict[str, int] = {}
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        for queue in ("priority", "celery"):
            try:
                depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # never declared, or emptied and gone (Redis): nothing waits
                depths[queue] = 0
    return depths


def status() -> dict[str, Any]:
    """How far propagation has got, for the console dashboard and ``propagation_status``.

    Keys: ``current_sequence``, ``store`` (``redis`` or ``database``), ``pending`` (count),
    ``oldest_pending`` (id, kind, entity, created_at, age_s) or None, ``queue_depth`` ({queue:
    messages} or None when unknown), ``worker_heartbeat_age_s`` (None: never seen),
    ``workers`` (hostnames with a live heartbeat), ``fresh_age_s``, ``parked`` (list of id,
    kind, entity, attempts, parked_at, last_error), ``last_error`` (the newest recorded error,
    with its change id), ``store_error`` when Redis could not be asked and ``broker_error`` when
    the broker could not.
    """
    pending = ChangeEvent.objects.filter(processed_at__isnull=True, parked_at__isnull=True)
    oldest = pending.order_by("id").values("id", "kind", "entity_id", "created_at").first()
    parked = list(
        ChangeEvent.objects.filter(processed_at__isnull=True, parked_at__isnull=False)
        .order_by("-id")
        .values("id", "kind", "entity_id", "attempts", "parked_at", "last_error")[:50]
    )
    last_error = (
        ChangeEvent.objects.exclude(last_error="")
        .order_by("-id")
        .values("id", "last_error", "processed_at")
        .first()
    )
    result: dict[str, Any] = {
        "current_sequence": current_sequence(),
        "store": "redis" if store.enabled() else "database",
        "pending": pending.count(),
        "oldest_pending": None,
        "queue_depth": None,
        "worker_heartbeat_age_s": None,
        "workers": [],
        "fresh_age_s": None,
        "parked": [
            {
                "id": p["id"],
                "kind": p["kind"],
                "entity_id": p["entity_id"],
                "attempts": p["attempts"],
                "parked_at": p["parked_at"].isoformat(),
                "last_error": p["last_error"],
            }
            for p in parked
        ],
        "last_error": (
            {"change_id": last_error["id"], "error": last_error["last_error"]}
            if last_error
            else None
        ),
    }
    if oldest:
        result["oldest_pending"] = {
            "id": oldest["id"],
            "kind": oldest["kind"],
            "entity_id": oldest["entity_id"],
            "created_at": oldest["created_at"].isoformat(),
            "age_s": _age(oldest["created_at"]),
        }
    try:
        result["queue_depth"] = queue_depths()
    except Exception as exc:
        result["broker_error"] = f"{type(exc).__name__}: {exc}"
    if store.enabled():
        try:
            redis = store.client()
            ns = store.namespace()
            result["worker_heartbeat_age_s"] = _age(store.get_float("heartbeat"))
            result["fresh_age_s"] = _age(store.get_float("fresh_at"))
            result["workers"] = sorted(
                k.decode().removeprefix(f"{ns}worker:")
                for k in redis.scan_iter(match=f"{ns}worker:*", count=100)
            )
        except Exception as exc:
            result["store_error"] = f"{type(exc).__name__}: {exc}"
    else:
        last_beat, result["workers"] = _cached_heartbeats()
        result["worker_heartbeat_age_s"] = _age(last_beat)
    return result


def as_text(info: dict[str, Any]) -> str:
    """``status()`` for people (the management command)."""
    lines = [
        f"current change sequence: {info['current_sequence']}",
        f"store: {info['store']}",
        f"pending changes: {info['pending']}",
    ]
    oldest = info["oldest_pending"]
    lines.append(
        "oldest unpropagated change: "
        + (
            f"#{oldest['id']} {oldest['kind']} {oldest['entity_id']} ({oldest['age_s']} s old)"
            if oldest
            else "none"
        )
    )
    depth = info["queue_depth"]
    lines.append(
        "queue depth: "
        + (", ".join(f"{q} {n}" for q, n in depth.items()) if depth is not None else "unknown")
    )
    heartbeat = info["worker_heartbeat_age_s"]
    lines.append(
        "worker heartbeat: "
        + (f"{heartbeat} s ago" if heartbeat is not None else "never")
        + (f" ({', '.join(info['workers'])})" if info["workers"] else " (no live worker)")
    )
    lines.append(f"parked changes: {len(info['parked'])}")
    for p in info["parked"]:
        lines.append(
            f"  #{p['id']} {p['kind']} {p['entity_id']} after {p['attempts']} attempts: "
            f"{p['last_error']}"
        )
    last = info["last_error"]
    lines.append(
        "last error: " + (f"change #{last['change_id']}: {last['error']}" if last else "none")
    )
    if "store_error" in info:
        lines.append(f"store error: {info['store_error']}")
    if "broker_error" in info:
        lines.append(f"broker error: {info['broker_error']}")
    return "\n".join(lines)


# --- reading back, for decisions ------------------------------------------------------------


@dataclass(frozen=True)
class Computed:
    """A principal's set computed from the database, when Redis has nothing to trust."""

    key: str
    stamp: int
    facts: dict[str, Any]
    policy_set: engine.CompiledPolicySet


def compute_from_database(
    *, unique_id: str | None = None, arn: str | None = None
) -> Computed | None:
    """The set of a user or role named by unique id or ARN, from PostgreSQL (the truth), or
    None when there is no such principal. Database errors propagate (the caller denies)."""
    stamp = current_sequence()
    user_pk: int | None = None
    role_pk: int | None = None
    if unique_id is not None:
        user_pk = User.objects.filter(unique_id=unique_id).values_list("pk", flat=True).first()
        if user_pk is None:
            role_pk = Role.objects.filter(unique_id=unique_id).values_list("pk", flat=True).first()
    elif arn is not None:
        user_pk, role_pk = _pk_for_arn(arn)
    if user_pk is not None:
        entries, failures = user_entries([user_pk], stamp=stamp)
    elif role_pk is not None:
        entries, failures = role_entries([role_pk], stamp=stamp)
    else:
        return None
    if failures:
        raise PrincipalCompileError(failures)
    entry = entries[0]
    return Computed(
        key=entry.key,
        stamp=stamp,
        facts=entry.facts,
        policy_set=engine.compile_policy_set_from_json(entry.body),
    )


def _pk_for_arn(arn: str) -> tuple[int | None, int | None]:
    parts = naming.parse_arn(arn)
    if not parts or parts["service"] != "iam":
        return None, None
    account, resource = parts["account"], parts["resource"]
    if resource == "root":
        pk = User.objects.filter(account_id=account, is_root=True).values_list("pk", flat=True)
        return pk.first(), None
    kind, _, rest = resource.partition("/")
    path_part, _, name = ("/" + rest).rpartition("/")
    path = path_part + "/"
    if kind == "user":
        pk = User.objects.filter(account_id=account, is_root=False, path=path, name=name)
        return pk.values_list("pk", flat=True).first(), None
    if kind == "role":
        pk = Role.objects.filter(account_id=account, path=path, name=name)
        return None, pk.values_list("pk", flat=True).first()
    return None, None


def wait_until_propagated(change_id: int, *, timeout_s: float = 10.0) -> bool:
    """Block until ``change_id`` is processed (tests, benchmark)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ChangeEvent.objects.filter(pk=change_id, processed_at__isnull=False).exists():
            return True
        time.sleep(0.005)
    return False
