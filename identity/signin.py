"""Console sign-in: the password step, the MFA step, lockout, throttling and sessions.

Everything here answers the same way whether the user exists or not: the same generic message
and status, and a password hash checked even for an unknown user (``_DUMMY_HASH``), so neither
the page nor its timing tells an attacker which names are real (OWASP ASVS 5.0 V6.3).

Lockout is beyond IAM (which has none): after ``Account.lockout_threshold`` consecutive failures
— wrong passwords *and* wrong MFA codes — a user is locked for ``lockout_duration_s`` (PCI DSS
v4 8.3.4). The count moves only through conditional UPDATEs, so concurrent attempts cannot lose
a failure, and attempts made while locked neither count nor extend the lock. A per-address
throttle (the Django cache: Redis in production) stops one source from locking out everyone
cheaply.

The pre-MFA state lives in the (already cycled) anonymous session: the user's id and a random
nonce. Nothing else is reachable with it — the user is not signed in until the code is right —
and the code is checked only against *that* user's devices. The session key is cycled at the
password step and again after the MFA step; the CSRF token rotates with it.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.hashers import check_password, make_password
from django.core.cache import cache
from django.db import transaction
from django.db.models import Case, F, Max, Q, Value, When
from django.http import HttpRequest
from django.middleware.csrf import rotate_token

from audit.context import Actor
from audit.services import record_event
from identity import mfa, passwords
from identity.models import AccessKey, Account, ConsoleSession, Group, User
from identity.passwords import clock
from identity.request_context import (
    AUTHENTICATED_AT_SESSION_KEY,
    MFA_AUTHENTICATED_AT_SESSION_KEY,
    request_meta,
)
from policies.outbox import Kind, record_change

__all__ = ["clock", "now"]

GENERIC_FAILURE = "Your authentication information is incorrect. Please try again."
THROTTLED_MESSAGE = "Too many sign-in attempts from your address. Wait a few minutes and try again."
HARD_EXPIRED_MESSAGE = (
    "Your password has expired and the account's password policy does not let you change it. "
    "Ask your administrator to reset it."
)

# Session keys.
PREAUTH_USER_KEY = "portcullis_preauth_user"
PREAUTH_NONCE_KEY = "portcullis_preauth_nonce"
PREAUTH_AT_KEY = "portcullis_preauth_at"
SESSION_GENERATION_KEY = "portcullis_session_generation"
LAST_SEEN_KEY = "portcullis_last_seen"
CONSOLE_SESSION_KEY = "portcullis_console_session"
MFA_ENROLMENT_REQUIRED_KEY = "portcullis_mfa_enrolment_required"

# How long the MFA step may take after the password step.
PREAUTH_LIFETIME_S = 5 * 60
# The per-address throttle (failures from one address within a window) is configured in
# settings: SIGNIN_IP_FAILURE_LIMIT and SIGNIN_IP_WINDOW_S (PORTCULLIS_SIGNIN_IP_* variables).

AUDIT_ACTION = "signin:ConsoleLogin"


def now() -> datetime:
    """The sign-in clock (see ``identity.passwords.clock``)."""
    return clock.now()


class Outcome(enum.Enum):
    SIGNED_IN = "signed_in"
    MFA_REQUIRED = "mfa_required"
    ENROLMENT_REQUIRED = "enrolment_required"
    FAILED = "failed"
    THROTTLED = "throttled"
    HARD_EXPIRED = "hard_expired"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    message: str = ""
    user: User | None = None


# --- Helpers --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return make_password(secrets.token_urlsafe(16))


def _actor(request: HttpRequest, user: User | None, account_id: str = "") -> Actor:
    meta = request_meta(request)
    if user is None:
        return Actor(arn="", account_id=account_id, kind="anonymous", meta=meta)
    return Actor(
        arn=user.arn,
        account_id=user.account_id,
        kind="root" if user.is_root else "user",
        user=user,
        meta=meta,
    )


def audit(
    request: HttpRequest,
    *,
    user: User | None,
    error_code: str = "",
    account_id: str = "",
    parameters: dict[str, object] | None = None,
    action: str = AUDIT_ACTION,
    after: dict[str, object] | None = None,
) -> None:
    """One ``signin`` audit event, with source address and user agent from the request."""
    record_event(
        actor=_actor(request, user, account_id),
        action=action,
        category="signin",
        resource_arn=user.arn if user else "",
        parameters=parameters or {},
        error_code=error_code,
        error_message=error_code and GENERIC_FAILURE,
        after=after,
    )


def resolve_account(reference: str) -> Account | None:
    """An account by its 12-digit id (dashes allowed, as AWS prints it) or its alias."""
    reference = reference.strip()
    if reference.replace("-", "").isdigit():
        reference = reference.replace("-", "")
    else:
        reference = reference.lower()
    if not reference:
        return None
    if reference.isdigit():
        return Account.objects.filter(pk=reference).first()
    return Account.objects.filter(alias=reference).first()


def _ip_key(request: HttpRequest) -> str:
    return f"signin:ip:{request_meta(request).source_ip}"


def ip_throttled(request: HttpRequest) -> bool:
    count = cache.get(_ip_key(request), 0)
    return int(count) >= settings.SIGNIN_IP_FAILURE_LIMIT


def _count_ip_failure(request: HttpRequest) -> None:
    key = _ip_key(request)
    window = settings.SIGNIN_IP_WINDOW_S
    if cache.add(key, 1, timeout=window):
        return
    try:
        cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=window)


def is_locked(user: User) -> bool:
    return not user.lockout_exempt and user.locked_until is not None and user.locked_until > now()


def record_failure(user: User) -> bool:
    """Count one failed attempt atomically; lock when the threshold is reached. Returns
    whether the user is locked now. Attempts while locked change nothing."""
    moment = now()
    account = user.account
    not_locked = Q(locked_until__isnull=True) | Q(locked_until__lte=moment)
    # A lock that has run out starts a fresh count.
    User.objects.filter(pk=user.pk).filter(not_locked).update(
        failed_signin_count=Case(
            When(locked_until__lte=moment, then=Value(1)),
            default=F("failed_signin_count") + 1,
        ),
        locked_until=None,
    )
    if user.lockout_exempt or account.lockout_threshold <= 0:
        return False
    locked = (
        User.objects.filter(
            pk=user.pk,
            lockout_exempt=False,
            locked_until__isnull=True,
            failed_signin_count__gte=account.lockout_threshold,
        ).update(locked_until=moment + timedelta(seconds=account.lockout_duration_s))
        > 0
    )
    return locked


def mfa_required_for(user: User) -> bool:
    """Whether the console requires MFA of ``user``: the account's rule, or the rule of one of
    the user's groups (the sign-in issue's "optionally per group")."""
    if user.account.require_mfa_for_console:
        return True
    return Group.objects.filter(memberships__user=user, require_mfa_for_console=True).exists()


def _reset_failures(user: User) -> None:
    User.objects.filter(pk=user.pk).update(failed_signin_count=0, locked_until=None)


# --- The password step ----------------------------------------------------------------------


def _find_iam_user(account_ref: str, user_name: str) -> User | None:
    account = resolve_account(account_ref)
    if account is None or not user_name:
        return None
    return (
        User.objects.filter(account=account, is_root=False, name__iexact=user_name.strip())
        .select_related("account")
        .first()
    )


def _find_root(email: str) -> User | None:
    if not email:
        return None
    return (
        User.objects.filter(is_root=True, email__iexact=email.strip())
        .select_related("account")
        .first()
    )


def password_step(
    request: HttpRequest,
    *,
    password: str,
    account_ref: str = "",
    user_name: str = "",
    root_email: str = "",
) -> Result:
    """Check the password (IAM user when ``root_email`` is empty, root user otherwise)."""
    is_root = bool(root_email)
    params: dict[str, object] = (
        {"RootEmail": root_email} if is_root else {"Account": account_ref, "UserName": user_name}
    )
    if ip_throttled(request):
        audit(request, user=None, error_code="Throttled", parameters=params)
        return Result(Outcome.THROTTLED, THROTTLED_MESSAGE)
    user = _find_root(root_email) if is_root else _find_iam_user(account_ref, user_name)
    normalized = passwords.normalize(password)
    if user is None or not user.is_active or not user.has_login_profile:
        check_password(normalized, _dummy_hash())
        _count_ip_failure(request)
        audit(
            request,
            user=None,
            error_code=(
                "UnknownUser"
                if user is None
                else ("NoLoginProfile" if user.is_active else "UserDisabled")
            ),
            account_id=user.account_id if user else "",
            parameters=params,
        )
        return Result(Outcome.FAILED, GENERIC_FAILURE)
    # Always hash, locked or not, so a locked account answers at the same speed.
    password_ok = check_password(normalized, user.password)
    if is_locked(user):
        _count_ip_failure(request)
        audit(request, user=user, error_code="Locked", parameters=params)
        return Result(Outcome.FAILED, GENERIC_FAILURE)
    if not password_ok:
        _count_ip_failure(request)
        locked = record_failure(user)
        audit(
            request,
            user=user,
            error_code="WrongPassword",
            parameters=params,
            after={"LockedNow": locked},
        )
        return Result(Outcome.FAILED, GENERIC_FAILURE)
    policy = passwords.effective_policy(user.account)
    if not user.is_root and policy.hard_expiry and passwords.password_expired(user, policy):
        audit(request, user=user, error_code="PasswordExpired", parameters=params)
        return Result(Outcome.HARD_EXPIRED, HARD_EXPIRED_MESSAGE, user)

    # The password is right: a new session key from here on (no fixation across the step).
    request.session.cycle_key()
    rotate_token(request)
    for key in (PREAUTH_USER_KEY, PREAUTH_NONCE_KEY, PREAUTH_AT_KEY):
        request.session.pop(key, None)
    request.session[AUTHENTICATED_AT_SESSION_KEY] = now().isoformat()

    if mfa.has_mfa(user):
        request.session[PREAUTH_USER_KEY] = user.pk
        request.session[PREAUTH_NONCE_KEY] = secrets.token_urlsafe(24)
        request.session[PREAUTH_AT_KEY] = now().isoformat()
        audit(request, user=user, action="signin:PasswordStep", parameters=params)
        return Result(Outcome.MFA_REQUIRED, user=user)

    _reset_failures(user)
    if passwords.password_expired(user, policy) and not user.is_root:
        # Soft expiry: signed in, but confined to the change-password page by middleware.
        audit(request, user=user, error_code="PasswordExpired", parameters=params)
    _complete(request, user, mfa_used=False, parameters=params)
    if mfa_required_for(user):
        request.session[MFA_ENROLMENT_REQUIRED_KEY] = True
        return Result(Outcome.ENROLMENT_REQUIRED, user=user)
    return Result(Outcome.SIGNED_IN, user=user)


# --- The MFA step ---------------------------------------------------------------------------


def pending_user(request: HttpRequest) -> User | None:
    """The user whose password step this session passed, if the MFA step is still open."""
    user_id = request.session.get(PREAUTH_USER_KEY)
    nonce = request.session.get(PREAUTH_NONCE_KEY)
    started = request.session.get(PREAUTH_AT_KEY)
    if not user_id or not nonce or not started:
        return None
    if (now() - datetime.fromisoformat(started)).total_seconds() > PREAUTH_LIFETIME_S:
        clear_pending(request)
        return None
    return User.objects.select_related("account").filter(pk=user_id, is_active=True).first()


def clear_pending(request: HttpRequest) -> None:
    for key in (PREAUTH_USER_KEY, PREAUTH_NONCE_KEY, PREAUTH_AT_KEY):
        request.session.pop(key, None)


def mfa_step(request: HttpRequest, *, code: str = "", recovery_code: str = "") -> Result:
    """Check a TOTP code (or a recovery code) for the pending user and finish signing in."""
    user = pending_user(request)
    if user is None:
        return Result(Outcome.FAILED, GENERIC_FAILURE)
    if ip_throttled(request):
        audit(request, user=user, error_code="Throttled")
        return Result(Outcome.THROTTLED, THROTTLED_MESSAGE)
    user.refresh_from_db()
    if is_locked(user):
        _count_ip_failure(request)
        audit(request, user=user, error_code="Locked")
        clear_pending(request)
        return Result(Outcome.FAILED, GENERIC_FAILURE)
    error = ""
    used = ""
    if recovery_code:
        if mfa.use_recovery_code(user=user, code=recovery_code):
            used = "RecoveryCode"
        else:
            error = "RecoveryCodeFailed"
    else:
        verification, _device = mfa.verify_user_totp(user, code)
        if verification is mfa.Verification.ACCEPTED:
            used = "TOTP"
        else:
            error = {
                mfa.Verification.REPLAYED: "TOTPReplay",
                mfa.Verification.THROTTLED: "MFAThrottled",
            }.get(verification, "MFAFailed")
    if error:
        _count_ip_failure(request)
        locked = record_failure(user)
        audit(request, user=user, error_code=error, after={"LockedNow": locked})
        if locked:
            clear_pending(request)
        return Result(Outcome.FAILED, "The MFA code is not valid. Please try again.")
    clear_pending(request)
    _reset_failures(user)
    _complete(request, user, mfa_used=True, parameters={"MFAUsed": used})
    return Result(Outcome.SIGNED_IN, user=user)


# --- Completing, re-authenticating, ending --------------------------------------------------


def _complete(
    request: HttpRequest, user: User, *, mfa_used: bool, parameters: dict[str, object]
) -> None:
    """Sign the user in: Django's ``login`` (which cycles the key), then cycle once more so the
    key changes even when ``login`` kept the session, and rotate the CSRF token."""
    authenticated_at = request.session.get(AUTHENTICATED_AT_SESSION_KEY) or now().isoformat()
    user.backend = "identity.backends.PortcullisBackend"  # type: ignore[attr-defined]
    login(request, user, backend="identity.backends.PortcullisBackend")
    request.session.cycle_key()
    rotate_token(request)
    moment = now()
    request.session[AUTHENTICATED_AT_SESSION_KEY] = authenticated_at
    if mfa_used:
        request.session[MFA_AUTHENTICATED_AT_SESSION_KEY] = moment.isoformat()
    request.session[SESSION_GENERATION_KEY] = user.session_generation
    request.session[LAST_SEEN_KEY] = moment.isoformat()
    request.session.save()
    meta = request_meta(request)
    with transaction.atomic():
        console_session = ConsoleSession.objects.create(
            user=user,
            session_key=request.session.session_key,
            created_at=moment,
            last_seen_at=moment,
            source_ip=meta.source_ip,
            user_agent=meta.user_agent,
            mfa_authenticated=mfa_used,
        )
        User.objects.filter(pk=user.pk).update(password_last_used=moment)
        audit(request, user=user, parameters=parameters, after={"MFAUsed": mfa_used})
    request.session[CONSOLE_SESSION_KEY] = console_session.pk


def adopt_session(request: HttpRequest, user: User, *, mfa_used: bool = False) -> None:
    """Start the bookkeeping (generation, timestamps, ``ConsoleSession`` row) for a session
    that Django's ``login()`` opened outside these steps — federation's OIDC sign-in, or a
    test's ``force_login`` — so the same timeouts and revocation apply to it."""
    moment = now()
    request.session.setdefault(AUTHENTICATED_AT_SESSION_KEY, moment.isoformat())
    if mfa_used:
        request.session[MFA_AUTHENTICATED_AT_SESSION_KEY] = moment.isoformat()
    request.session[SESSION_GENERATION_KEY] = user.session_generation
    request.session[LAST_SEEN_KEY] = moment.isoformat()
    if request.session.session_key is None:
        request.session.save()
    meta = request_meta(request)
    row = ConsoleSession.objects.create(
        user=user,
        session_key=request.session.session_key,
        created_at=moment,
        last_seen_at=moment,
        source_ip=meta.source_ip,
        user_agent=meta.user_agent,
        mfa_authenticated=mfa_used,
    )
    request.session[CONSOLE_SESSION_KEY] = row.pk


def reauthenticate(request: HttpRequest, *, password: str, code: str = "") -> bool:
    """Step-up: the signed-in user proves the password (and a TOTP code when they have a
    device) again. Failures count towards the lockout like any sign-in failure."""
    user: User = User.objects.select_related("account").get(pk=request.user.pk)
    password_ok = check_password(passwords.normalize(password), user.password)
    if is_locked(user) or not password_ok:
        record_failure(user)
        audit(request, user=user, action="signin:Reauthenticate", error_code="WrongPassword")
        return False
    has_device = mfa.has_mfa(user)
    if has_device:
        verification, _ = mfa.verify_user_totp(user, code)
        if verification is not mfa.Verification.ACCEPTED:
            record_failure(user)
            error = "TOTPReplay" if verification is mfa.Verification.REPLAYED else "MFAFailed"
            audit(request, user=user, action="signin:Reauthenticate", error_code=error)
            return False
    _reset_failures(user)
    moment = now().isoformat()
    request.session[AUTHENTICATED_AT_SESSION_KEY] = moment
    if has_device:
        request.session[MFA_AUTHENTICATED_AT_SESSION_KEY] = moment
    audit(request, user=user, action="signin:Reauthenticate")
    return True


def restamp_after_password_change(request: HttpRequest) -> None:
    """A password change ends every other session (``session_generation`` moved on); this
    one stays: record the new generation in it."""
    user = User.objects.get(pk=request.user.pk)
    # Django ties a session to the password hash: re-tie this one (which cycles its key, so
    # the ConsoleSession row follows the new key).
    update_session_auth_hash(request, user)
    request.session[SESSION_GENERATION_KEY] = user.session_generation
    session_id = request.session.get(CONSOLE_SESSION_KEY)
    if session_id:
        ConsoleSession.objects.filter(pk=session_id).update(session_key=request.session.session_key)


def sign_out(request: HttpRequest, *, reason: str = "SignOut") -> None:
    """End this session (its row too) and audit why."""
    user = request.user if request.user.is_authenticated else None
    session_id = request.session.get(CONSOLE_SESSION_KEY)
    if session_id:
        ConsoleSession.objects.filter(pk=session_id, ended_at__isnull=True).update(ended_at=now())
    if user is not None:
        audit(request, user=user, action="signin:ConsoleLogout", parameters={"Reason": reason})
    logout(request)


def active_sessions(user: User) -> list[ConsoleSession]:
    return list(
        ConsoleSession.objects.filter(user=user, ended_at__isnull=True).order_by("-last_seen_at")
    )


# --- Administrator actions (authorized by the caller) ---------------------------------------


def unlock_user(*, user: User, actor: Actor) -> None:
    """``portcullis:UnlockUser``: clear a lockout and its failure count."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        before = {
            "FailedSignInCount": locked.failed_signin_count,
            "LockedUntil": locked.locked_until.isoformat() if locked.locked_until else None,
        }
        User.objects.filter(pk=user.pk).update(failed_signin_count=0, locked_until=None)
        record_event(
            actor=actor,
            action="portcullis:UnlockUser",
            resource_arn=user.arn,
            parameters={"UserName": user.name},
            before=before,
            after={"FailedSignInCount": 0, "LockedUntil": None},
        )
    user.failed_signin_count = 0
    user.locked_until = None


def end_user_sessions(*, user: User, actor: Actor) -> int:
    """``portcullis:EndUserSessions``: an administrator ends every console session of a user.

    The user's session generation moves on as well, so a session the list does not show (one
    opened while this runs) ends at its next request too. Returns how many listed sessions
    ended."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).update(
            session_generation=F("session_generation") + 1
        )
        sessions = ConsoleSession.objects.filter(user=user, ended_at__isnull=True)
        keys = list(sessions.values_list("session_key", flat=True))
        ended = sessions.update(ended_at=now())
        _delete_django_sessions(keys)
        record_event(
            actor=actor,
            action="portcullis:EndUserSessions",
            resource_arn=user.arn,
            parameters={"UserName": user.name},
            after={"SessionsEnded": ended},
        )
    return ended


def enable_user(*, user: User, actor: Actor) -> bool:
    """``portcullis:EnableUser``: let a disabled user (inactivity, PCI DSS 8.2.6) sign in and
    use their access keys again. Inactivity counts from now. Returns whether anything changed
    (enabling an enabled user is a no-op, still audited)."""
    moment = now()
    with transaction.atomic():
        changed = bool(
            User.objects.filter(pk=user.pk, is_active=False).update(
                is_active=True, active_since=moment
            )
        )
        if changed:
            _record_access_change(user)
        record_event(
            actor=actor,
            action="portcullis:EnableUser",
            resource_arn=user.arn,
            parameters={"UserName": user.name},
            before={"Active": not changed},
            after={"Active": True},
        )
    user.is_active = True
    return changed


def _record_access_change(user: User) -> None:
    """Outbox rows for a user whose access changed as a whole (enabled or disabled): the
    user's compiled set and every access key's entry, first in the queue."""
    account_id = user.account_id
    record_change(kind=Kind.USER, account_id=account_id, entity_id=user.unique_id, priority=True)
    for key_id in AccessKey.objects.filter(user=user).values_list("access_key_id", flat=True):
        record_change(kind=Kind.ACCESS_KEY, account_id=account_id, entity_id=key_id)


def set_lockout_exemption(*, user: User, exempt: bool, actor: Actor) -> None:
    """``portcullis:SetLockoutExemption``: exempt a break-glass user from lockout (and from
    the inactivity sweep), or end the exemption. Failed attempts still count and are audited;
    the per-address throttle still applies."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        before = locked.lockout_exempt
        User.objects.filter(pk=user.pk).update(lockout_exempt=exempt)
        record_event(
            actor=actor,
            action="portcullis:SetLockoutExemption",
            resource_arn=user.arn,
            parameters={"UserName": user.name, "LockoutExempt": exempt},
            before={"LockoutExempt": before},
            after={"LockoutExempt": exempt},
        )
    user.lockout_exempt = exempt


def set_group_mfa_requirement(*, group: Group, required: bool, actor: Actor) -> None:
    """``portcullis:SetGroupMFARequirement``: require MFA for console sign-in of this group's
    members (beyond the account-wide rule). Applies from each member's next sign-in."""
    with transaction.atomic():
        locked = Group.objects.select_for_update().get(pk=group.pk)
        before = locked.require_mfa_for_console
        locked.require_mfa_for_console = required
        locked.save(update_fields=["require_mfa_for_console"])
        record_event(
            actor=actor,
            action="portcullis:SetGroupMFARequirement",
            resource_arn=group.arn,
            parameters={"GroupName": group.name, "RequireMFAForConsole": required},
            before={"RequireMFAForConsole": before},
            after={"RequireMFAForConsole": required},
        )
    group.require_mfa_for_console = required


def last_activity(user: User) -> datetime:
    """The latest sign of life of a user: console sign-in or session, access key use, creation,
    or being re-enabled by an administrator."""
    moments = [user.created_at]
    for value in (
        user.password_last_used,
        user.active_since,
        AccessKey.objects.filter(user=user).aggregate(m=Max("last_used_at"))["m"],
        ConsoleSession.objects.filter(user=user).aggregate(m=Max("last_seen_at"))["m"],
    ):
        if value is not None:
            moments.append(value)
    return max(moments)


def disable_inactive_users(*, account_id: str | None = None) -> int:
    """Disable the users inactive for longer than their account's
    ``disable_inactive_users_after_days`` (PCI DSS v4 8.2.6: 90 days). Returns how many.

    Not the root user, and not a user exempt from lockout: that flag marks a break-glass
    account, which by design may go unused for long. Each user is disabled by a conditional
    UPDATE (``is_active`` still true), so two sweeps running at once disable and audit a user
    once; the audit row and the propagation rows commit with it. A disabled user cannot sign in
    and their access keys stop working; an administrator re-enables them (``enable_user``)."""
    accounts = Account.objects.filter(disable_inactive_users_after_days__isnull=False)
    if account_id is not None:
        accounts = accounts.filter(pk=account_id)
    moment = now()
    disabled = 0
    for account in accounts:
        days = account.disable_inactive_users_after_days
        if not days:
            continue
        cutoff = moment - timedelta(days=days)
        candidates = (
            User.objects.filter(
                account=account, is_root=False, is_active=True, lockout_exempt=False
            )
            .filter(created_at__lt=cutoff)
            .filter(Q(password_last_used__isnull=True) | Q(password_last_used__lt=cutoff))
            .filter(Q(active_since__isnull=True) | Q(active_since__lt=cutoff))
            .exclude(access_keys__last_used_at__gte=cutoff)
            .exclude(console_sessions__last_seen_at__gte=cutoff)
            .select_related("account")
            .order_by("pk")
        )
        actor = Actor.system("DisableInactiveUsers", account_id=account.id)
        for user in candidates.iterator():
            inactive_since = last_activity(user)
            with transaction.atomic():
                won = User.objects.filter(pk=user.pk, is_active=True).update(
                    is_active=False, session_generation=F("session_generation") + 1
                )
                if not won:
                    continue
                ConsoleSession.objects.filter(user=user, ended_at__isnull=True).update(
                    ended_at=moment
                )
                _record_access_change(user)
                record_event(
                    actor=actor,
                    action="portcullis:DisableInactiveUser",
                    resource_arn=user.arn,
                    parameters={"UserName": user.name, "InactiveDays": days},
                    before={"Active": True, "LastActivity": inactive_since.isoformat()},
                    after={"Active": False},
                )
            disabled += 1
    return disabled


def end_sessions(
    *, user: User, actor: Actor, session_ids: list[int] | None = None, keep_key: str = ""
) -> int:
    """``portcullis:EndConsoleSessions``: end some (``session_ids``) or all of a user's
    console sessions, except the one with ``keep_key`` (the caller's own). Returns how many."""
    with transaction.atomic():
        sessions = ConsoleSession.objects.filter(user=user, ended_at__isnull=True)
        if session_ids is not None:
            sessions = sessions.filter(pk__in=session_ids)
        if keep_key:
            sessions = sessions.exclude(session_key=keep_key)
        keys = list(sessions.values_list("session_key", flat=True))
        ended = sessions.update(ended_at=now())
        _delete_django_sessions(keys)
        record_event(
            actor=actor,
            action="portcullis:EndConsoleSessions",
            resource_arn=user.arn,
            parameters={"UserName": user.name, "Count": ended},
        )
    return ended


def _delete_django_sessions(keys: list[str]) -> None:
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore
    for key in keys:
        store(session_key=key).delete()
