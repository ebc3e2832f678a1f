"""Console passwords: the account password policy, login profiles and ``ChangePassword``.

AWS references: IAM User Guide "Set an account password policy for IAM users" and "Managing
passwords for IAM users"; IAM API Reference ``UpdateAccountPasswordPolicy``,
``GetAccountPasswordPolicy``, ``DeleteAccountPasswordPolicy``, ``CreateLoginProfile``,
``UpdateLoginProfile``, ``DeleteLoginProfile``, ``GetLoginProfile`` and ``ChangePassword``.

Beyond IAM, and always on (NIST SP 800-63B 3.1.1.2): a common-password list, no password
containing the user name, email local part or account alias, any Unicode accepted and NFKC-
normalised before hashing (so the same password typed on two keyboards matches), counted in
code points, at most 128, never truncated or case-folded. ``password_rule_violations`` returns
*every* broken rule, so the message names each one.

Callers authorize before calling (``policies.access``), except where IAM itself makes an
exception: ``AllowUsersToChangePassword`` lets every IAM user change their own password and
read the policy (``may_change_own_password``).
"""

from __future__ import annotations

import gzip
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audit.context import Actor
from audit.services import record_event
from identity.errors import (
    AccessDenied,
    ClientError,
    EntityAlreadyExists,
    NoSuchEntity,
    PasswordPolicyViolation,
    ValidationError,
)
from identity.models import Account, PasswordHistory, PasswordPolicy, User

MAX_PASSWORD_LENGTH = 128
# AWS's symbol set for RequireSymbols (IAM User Guide, "Set an account password policy").
SYMBOLS = frozenset("!@#$%^&*()_+-=[]{}|'")
# The longest reuse window IAM allows; history beyond it is never consulted, so it is trimmed.
MAX_HISTORY = 24


class InvalidUserType(ClientError):
    """IAM's error for ``ChangePassword`` called by the root user (IAM API Reference)."""

    code = "InvalidUserType"


class _Clock:
    """The server's notion of "now" for sign-in, sessions, expiry and TOTP.

    A plain function of ``timezone.now()`` plus an offset that is zero in production. Tests
    move it forward to cross a lockout, an idle timeout or a password's maximum age without
    sleeping; the live test server runs in the test's process, so it sees the same clock.
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return timezone.now() + self.offset

    def timestamp(self) -> float:
        return self.now().timestamp()


clock = _Clock()


# --- The effective policy --------------------------------------------------------------------


@dataclass(frozen=True)
class EffectivePolicy:
    """The rules that apply when a password is set: the account's policy, or IAM's default.

    With no policy set, IAM's console applies: at least 8 characters, at least three of
    upper-case, lower-case, digits and symbols, and not the account name or email (IAM User
    Guide, "Default password policy").
    """

    minimum_password_length: int
    require_symbols: bool
    require_numbers: bool
    require_uppercase_characters: bool
    require_lowercase_characters: bool
    allow_users_to_change_password: bool
    max_password_age: int | None
    password_reuse_prevention: int | None
    hard_expiry: bool
    is_default: bool
    three_of_four: bool = False

    def describe(self) -> list[str]:
        """The rules in words, for the page that sets a password."""
        rules = [
            f"At least {self.minimum_password_length} characters, at most {MAX_PASSWORD_LENGTH}"
        ]
        if self.three_of_four:
            rules.append(
                "At least three of: upper-case letters, lower-case letters, numbers, symbols"
            )
        if self.require_uppercase_characters:
            rules.append("At least one upper-case letter (A–Z)")
        if self.require_lowercase_characters:
            rules.append("At least one lower-case letter (a–z)")
        if self.require_numbers:
            rules.append("At least one number (0–9)")
        if self.require_symbols:
            rules.append("At least one symbol: ! @ # $ % ^ & * ( ) _ + - = [ ] { } | '")
        if self.password_reuse_prevention:
            rules.append(f"Not one of your last {self.password_reuse_prevention} passwords")
        rules.append("Not a commonly used password")
        rules.append("Not containing your user name or the account alias")
        if self.max_password_age:
            rules.append(f"Expires after {self.max_password_age} days")
        return rules


DEFAULT_POLICY = EffectivePolicy(
    minimum_password_length=8,
    require_symbols=False,
    require_numbers=False,
    require_uppercase_characters=False,
    require_lowercase_characters=False,
    allow_users_to_change_password=False,
    max_password_age=None,
    password_reuse_prevention=None,
    hard_expiry=False,
    is_default=True,
    three_of_four=True,
)


def effective_policy(account: Account) -> EffectivePolicy:
    row = PasswordPolicy.objects.filter(account=account).first()
    if row is None:
        return DEFAULT_POLICY
    return EffectivePolicy(
        minimum_password_length=row.minimum_password_length,
        require_symbols=row.require_symbols,
        require_numbers=row.require_numbers,
        require_uppercase_characters=row.require_uppercase_characters,
        require_lowercase_characters=row.require_lowercase_characters,
        allow_users_to_change_password=row.allow_users_to_change_password,
        max_password_age=row.max_password_age,
        password_reuse_prevention=row.password_reuse_prevention,
        hard_expiry=row.hard_expiry,
        is_default=False,
    )


# --- Rules ---------------------------------------------------------------------------------


def normalize(password: str) -> str:
    """NFKC, so "ｐａｓｓ" and "pass" are one password; never case-folded or truncated."""
    return unicodedata.normalize("NFKC", password)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """Django's list of 20,000 common passwords (lower-case), shipped in identity/data."""
    path = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return frozenset(line.strip() for line in handle if line.strip())


def _forbidden_words(account: Account, user: User | None) -> list[str]:
    words: list[str] = []
    if user is not None:
        if user.is_root:
            if user.email:
                words.append(user.email.split("@")[0])
        else:
            words.append(user.name)
    if account.alias:
        words.append(account.alias)
    words.append(account.id)
    # Very short names would forbid half the dictionary; three characters is where a name
    # starts to be a real guess.
    return [w.lower() for w in words if len(w) >= 3]


def password_rule_violations(
    *,
    password: str,
    account: Account,
    user: User | None = None,
    policy: EffectivePolicy | None = None,
    check_history: bool = True,
) -> list[str]:
    """Every rule ``password`` breaks, as sentences. Empty means acceptable."""
    policy = policy or effective_policy(account)
    pw = normalize(password)
    broken: list[str] = []
    length = len(pw)
    if length < policy.minimum_password_length:
        broken.append(f"Password should have a minimum length of {policy.minimum_password_length}")
    if length > MAX_PASSWORD_LENGTH:
        broken.append(f"Password should have a maximum length of {MAX_PASSWORD_LENGTH}")
    has_upper = any(c.isupper() for c in pw)
    has_lower = any(c.islower() for c in pw)
    has_digit = any(c.isdigit() for c in pw)
    has_symbol = any(c in SYMBOLS or not (c.isalnum() or c.isspace()) for c in pw)
    if policy.require_uppercase_characters and not has_upper:
        broken.append("Password should have at least one uppercase letter")
    if policy.require_lowercase_characters and not has_lower:
        broken.append("Password should have at least one lowercase letter")
    if policy.require_numbers and not has_digit:
        broken.append("Password should have at least one number")
    if policy.require_symbols and not any(c in SYMBOLS for c in pw):
        broken.append("Password should have at least one symbol")
    if policy.three_of_four and sum((has_upper, has_lower, has_digit, has_symbol)) < 3:
        broken.append(
            "Password should have at least three of: uppercase letters, lowercase letters, "
            "numbers, symbols"
        )
    lowered = pw.lower()
    if lowered in common_passwords():
        broken.append("Password is too common")
    for word in _forbidden_words(account, user):
        if word in lowered:
            broken.append("Password should not contain the user name or the account alias")
            break
    reuse = policy.password_reuse_prevention
    if (
        check_history
        and user is not None
        and reuse
        and was_used_before(user=user, password=pw, count=reuse)
    ):
        broken.append(f"Password should not be one of the last {reuse} passwords used")
    return broken


def was_used_before(*, user: User, password: str, count: int) -> bool:
    """Whether ``password`` matches one of the user's last ``count`` stored hashes."""
    hashes = PasswordHistory.objects.filter(user=user).order_by("-created_at", "-id")[:count]
    # check_password is constant-time per hash; every hash is checked, so the time taken says
    # nothing about which one matched.
    matched = False
    for row in hashes:
        if check_password(password, row.password_hash):
            matched = True
    return matched


def validate_new_password(*, password: str, account: Account, user: User | None = None) -> None:
    """``PasswordPolicyViolation`` naming every broken rule, or nothing."""
    broken = password_rule_violations(password=password, account=account, user=user)
    if broken:
        raise PasswordPolicyViolation("; ".join(broken) + ".")


def generate_password(account: Account, user: User | None = None) -> str:
    """A random password that satisfies the account's policy (for administrators)."""
    policy = effective_policy(account)
    length = max(20, policy.minimum_password_length)
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    symbols = "!@#$%^&*()_+-=[]{}|'"
    while True:
        chars = [secrets.choice(alphabet) for _ in range(length - 4)]
        chars += [
            secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ"),
            secrets.choice("abcdefghijkmnopqrstuvwxyz"),
            secrets.choice("23456789"),
            secrets.choice(symbols),
        ]
        secrets.SystemRandom().shuffle(chars)
        candidate = "".join(chars)
        if not password_rule_violations(password=candidate, account=account, user=user):
            return candidate


# --- Expiry --------------------------------------------------------------------------------


def password_expires_at(user: User, policy: EffectivePolicy | None = None) -> datetime | None:
    """When the user's password expires under ``MaxPasswordAge`` (never for root)."""
    if user.is_root or not user.has_login_profile:
        return None
    policy = policy or effective_policy(user.account)
    if not policy.max_password_age:
        return None
    changed = user.password_last_changed or user.password_created_at or user.created_at
    return changed + timedelta(days=policy.max_password_age)


def password_expired(user: User, policy: EffectivePolicy | None = None) -> bool:
    """Expiry applies at once when ``MaxPasswordAge`` is set (IAM User Guide)."""
    expires = password_expires_at(user, policy)
    return expires is not None and clock.now() >= expires


# --- Internal: setting a password ----------------------------------------------------------


def _store_password(user: User, password: str, *, reset_required: bool) -> None:
    """Hash (Argon2id), record history, end the user's other sessions. In a transaction."""
    pw = normalize(password)
    now = clock.now()
    user.set_password(pw)
    if user.password_created_at is None:
        user.password_created_at = now
    user.password_last_changed = now
    user.password_reset_required = reset_required
    user.save(
        update_fields=[
            "password",
            "password_created_at",
            "password_last_changed",
            "password_reset_required",
        ]
    )
    # Every console session of the user ends; the caller re-stamps the one that stays.
    User.objects.filter(pk=user.pk).update(session_generation=F("session_generation") + 1)
    user.refresh_from_db(fields=["session_generation"])
    PasswordHistory.objects.create(user=user, password_hash=user.password, created_at=now)
    keep = PasswordHistory.objects.filter(user=user).order_by("-created_at", "-id")[:MAX_HISTORY]
    PasswordHistory.objects.filter(user=user).exclude(
        pk__in=list(keep.values_list("pk", flat=True))
    ).delete()


def _get_iam_user(account: Account, user_name: str) -> User:
    user = User.objects.filter(account=account, is_root=False, name__iexact=user_name).first()
    if user is None:
        raise NoSuchEntity(f"The user with name {user_name} cannot be found.")
    return user


def _locked_user(account: Account, user_name: str) -> User:
    user = _get_iam_user(account, user_name)
    return User.objects.select_for_update().select_related("account").get(pk=user.pk)


def _no_login_profile(user_name: str) -> NoSuchEntity:
    return NoSuchEntity(f"Login Profile for User {user_name} cannot be found.")


# --- Account password policy ---------------------------------------------------------------


def _range_violation(value: Any, field: str, low: int, high: int) -> str | None:
    if value is None:
        return None
    if value < low:
        return (
            f"Value '{value}' at '{field}' failed to satisfy constraint: "
            f"Member must have value greater than or equal to {low}"
        )
    if value > high:
        return (
            f"Value '{value}' at '{field}' failed to satisfy constraint: "
            f"Member must have value less than or equal to {high}"
        )
    return None


def policy_snapshot(policy: PasswordPolicy | None) -> dict[str, Any] | None:
    """The policy as ``GetAccountPasswordPolicy`` returns it."""
    if policy is None:
        return None
    data: dict[str, Any] = {
        "MinimumPasswordLength": policy.minimum_password_length,
        "RequireSymbols": policy.require_symbols,
        "RequireNumbers": policy.require_numbers,
        "RequireUppercaseCharacters": policy.require_uppercase_characters,
        "RequireLowercaseCharacters": policy.require_lowercase_characters,
        "AllowUsersToChangePassword": policy.allow_users_to_change_password,
        "ExpirePasswords": policy.expire_passwords,
        "HardExpiry": policy.hard_expiry,
    }
    if policy.max_password_age is not None:
        data["MaxPasswordAge"] = policy.max_password_age
    if policy.password_reuse_prevention is not None:
        data["PasswordReusePrevention"] = policy.password_reuse_prevention
    return data


def update_account_password_policy(
    *,
    account: Account,
    actor: Actor,
    minimum_password_length: int | None = None,
    require_symbols: bool = False,
    require_numbers: bool = False,
    require_uppercase_characters: bool = False,
    require_lowercase_characters: bool = False,
    allow_users_to_change_password: bool = False,
    max_password_age: int | None = None,
    password_reuse_prevention: int | None = None,
    hard_expiry: bool = False,
) -> PasswordPolicy:
    """``iam:UpdateAccountPasswordPolicy``. Not partial: every omitted field returns to its
    default (IAM API Reference: "If you do not specify a value for a parameter, then the
    operation uses the default value")."""
    problems = [
        p
        for p in (
            _range_violation(minimum_password_length, "minimumPasswordLength", 6, 128),
            _range_violation(max_password_age, "maxPasswordAge", 1, 1095),
            _range_violation(password_reuse_prevention, "passwordReusePrevention", 1, 24),
        )
        if p
    ]
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise ValidationError(f"{count} validation {noun} detected: " + "; ".join(problems))
    with transaction.atomic():
        Account.objects.select_for_update().filter(pk=account.pk).exists()
        existing = PasswordPolicy.objects.filter(account=account).first()
        before = policy_snapshot(existing)
        policy = existing or PasswordPolicy(account=account)
        policy.minimum_password_length = minimum_password_length or 6
        policy.require_symbols = require_symbols
        policy.require_numbers = require_numbers
        policy.require_uppercase_characters = require_uppercase_characters
        policy.require_lowercase_characters = require_lowercase_characters
        policy.allow_users_to_change_password = allow_users_to_change_password
        policy.max_password_age = max_password_age
        policy.password_reuse_prevention = password_reuse_prevention
        policy.hard_expiry = hard_expiry
        policy.save()
        after = policy_snapshot(policy)
        record_event(
            actor=actor,
            action="iam:UpdateAccountPasswordPolicy",
            resource_arn=account.root_arn,
            parameters=after or {},
            before=before,
            after=after,
        )
    return policy


def get_account_password_policy(*, account: Account) -> PasswordPolicy:
    """``iam:GetAccountPasswordPolicy``: ``NoSuchEntity`` when none is set."""
    policy = PasswordPolicy.objects.filter(account=account).first()
    if policy is None:
        raise NoSuchEntity(f"The Password Policy with domain name {account.id} cannot be found.")
    return policy


def delete_account_password_policy(*, account: Account, actor: Actor) -> None:
    """``iam:DeleteAccountPasswordPolicy``: sign-in falls back to IAM's default rules."""
    with transaction.atomic():
        policy = PasswordPolicy.objects.select_for_update().filter(account=account).first()
        if policy is None:
            raise NoSuchEntity("The account policy with name PasswordPolicy cannot be found.")
        before = policy_snapshot(policy)
        policy.delete()
        record_event(
            actor=actor,
            action="iam:DeleteAccountPasswordPolicy",
            resource_arn=account.root_arn,
            before=before,
        )


# --- Login profiles ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginProfile:
    """``GetLoginProfile``'s answer."""

    user_name: str
    create_date: datetime
    password_reset_required: bool


def _profile(user: User) -> LoginProfile:
    return LoginProfile(
        user_name=user.name,
        create_date=user.password_created_at or user.created_at,
        password_reset_required=user.password_reset_required,
    )


def create_login_profile(
    *,
    account: Account,
    user_name: str,
    password: str,
    password_reset_required: bool = False,
    actor: Actor,
) -> LoginProfile:
    """``iam:CreateLoginProfile``: give a user a console password."""
    with transaction.atomic():
        user = _locked_user(account, user_name)
        if user.has_login_profile:
            raise EntityAlreadyExists(f"Login Profile for user {user.name} already exists.")
        validate_new_password(password=password, account=account, user=user)
        _store_password(user, password, reset_required=password_reset_required)
        record_event(
            actor=actor,
            action="iam:CreateLoginProfile",
            resource_arn=user.arn,
            parameters={
                "UserName": user.name,
                "Password": password,
                "PasswordResetRequired": password_reset_required,
            },
            after={"UserName": user.name, "PasswordResetRequired": password_reset_required},
        )
    return _profile(user)


def update_login_profile(
    *,
    account: Account,
    user_name: str,
    password: str | None = None,
    password_reset_required: bool | None = None,
    actor: Actor,
) -> LoginProfile:
    """``iam:UpdateLoginProfile``: an administrator sets a user's password or reset flag.
    A new password ends the user's console sessions."""
    with transaction.atomic():
        user = _locked_user(account, user_name)
        if not user.has_login_profile:
            raise _no_login_profile(user.name)
        before = {"PasswordResetRequired": user.password_reset_required}
        reset = (
            user.password_reset_required
            if password_reset_required is None
            else (password_reset_required)
        )
        if password is not None:
            validate_new_password(password=password, account=account, user=user)
            _store_password(user, password, reset_required=reset)
        else:
            user.password_reset_required = reset
            user.save(update_fields=["password_reset_required"])
        record_event(
            actor=actor,
            action="iam:UpdateLoginProfile",
            resource_arn=user.arn,
            parameters={
                "UserName": user.name,
                "Password": password,
                "PasswordResetRequired": password_reset_required,
            },
            before=before,
            after={"PasswordResetRequired": reset, "PasswordChanged": password is not None},
        )
    return _profile(user)


def delete_login_profile(*, account: Account, user_name: str, actor: Actor) -> None:
    """``iam:DeleteLoginProfile``: no more console sign-in; current sessions end."""
    with transaction.atomic():
        user = _locked_user(account, user_name)
        if not user.has_login_profile:
            raise _no_login_profile(user.name)
        user.set_unusable_password()
        user.password_reset_required = False
        user.save(update_fields=["password", "password_reset_required"])
        User.objects.filter(pk=user.pk).update(session_generation=F("session_generation") + 1)
        record_event(
            actor=actor,
            action="iam:DeleteLoginProfile",
            resource_arn=user.arn,
            parameters={"UserName": user.name},
        )


def get_login_profile(*, account: Account, user_name: str) -> LoginProfile:
    """``iam:GetLoginProfile``."""
    user = _get_iam_user(account, user_name)
    if not user.has_login_profile:
        raise _no_login_profile(user.name)
    return _profile(user)


# --- ChangePassword ------------------------------------------------------------------------


def may_change_own_password(actor: Actor) -> bool:
    """IAM's exception: with ``AllowUsersToChangePassword`` every IAM user may change their
    own password (and read the policy) without any permission; otherwise ``iam:ChangePassword``
    on their own ARN must be allowed (IAM User Guide, "Permitting IAM users to change their own
    passwords")."""
    from policies.access import decide

    user: User = actor.user
    if user is None:
        return False
    if user.is_root:
        return True
    if effective_policy(user.account).allow_users_to_change_password:
        return True
    return decide(actor, "iam:ChangePassword", user.arn).allowed


def change_password(*, user: User, old_password: str, new_password: str, actor: Actor) -> None:
    """``iam:ChangePassword``: the calling IAM user changes their own password.

    The current password is required. With ``HardExpiry`` an expired password cannot be
    changed by its owner: an administrator must reset it. The user's other console sessions
    end; the caller keeps the current one by re-stamping it (see ``identity.signin``).
    """
    if user.is_root:
        raise InvalidUserType("Root user cannot change password with this operation.")
    with transaction.atomic():
        user = User.objects.select_for_update().select_related("account").get(pk=user.pk)
        if not user.has_login_profile:
            raise _no_login_profile(user.name)
        policy = effective_policy(user.account)
        if not check_password(normalize(old_password), user.password):
            raise AccessDenied("The old password is incorrect.")
        if policy.hard_expiry and password_expired(user, policy):
            raise AccessDenied(
                "Your password has expired and the account's password policy does not let you "
                "change it. Ask your administrator to reset it."
            )
        validate_new_password(password=new_password, account=user.account, user=user)
        _store_password(user, new_password, reset_required=False)
        record_event(
            actor=actor,
            action="iam:ChangePassword",
            resource_arn=user.arn,
            parameters={"OldPassword": old_password, "NewPassword": new_password},
            after={"UserName": user.name},
        )


def change_root_password(*, user: User, old_password: str, new_password: str, actor: Actor) -> None:
    """The root user changes its own password in the console (the account policy does not
    apply to root, but the always-on rules do)."""
    if not user.is_root:
        raise InvalidUserType("Only the root user can use this operation.")
    with transaction.atomic():
        user = User.objects.select_for_update().select_related("account").get(pk=user.pk)
        if not check_password(normalize(old_password), user.password):
            raise AccessDenied("The old password is incorrect.")
        broken = password_rule_violations(
            password=new_password, account=user.account, user=user, policy=DEFAULT_POLICY
        )
        if broken:
            raise PasswordPolicyViolation("; ".join(broken) + ".")
        _store_password(user, new_password, reset_required=False)
        record_event(
            actor=actor,
            action="portcullis:ChangeRootPassword",
            resource_arn=user.arn,
            parameters={"OldPassword": old_password, "NewPassword": new_password},
        )


def hash_password(password: str) -> str:
    """The stored form of a password (Argon2id over its NFKC form)."""
    return make_password(normalize(password))
