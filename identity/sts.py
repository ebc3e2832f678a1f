"""STS: temporary credentials from ``GetSessionToken`` and ``AssumeRole``.

Temporary credentials are an ``ASIA…`` key id, a secret (encrypted at rest like a long-term
key's, since SigV4 needs it back) and a session token stored only as its SHA-256. They stop
working at ``expires_at``; a role's sessions also stop when the role's sessions are revoked
(``Role.sessions_revoked_before``, AWS's ``aws:TokenIssueTime`` deny).

References: AWS STS API Reference (GetSessionToken, AssumeRole); IAM User Guide "Comparing AWS
STS credentials", "Role chaining", "Passing session tags in AWS STS", "Session policies".
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.context import Actor
from audit.services import record_event
from identity import crypto, mfa, naming, quotas
from identity.errors import (
    AccessDenied,
    ClientError,
    InvalidInput,
    MalformedPolicyDocument,
    NoSuchEntity,
    ValidationError,
)
from identity.models import Account, Role, TemporaryCredential, User

SESSION_TOKEN_MIN_S = 900
SESSION_TOKEN_MAX_S = 129600
SESSION_TOKEN_DEFAULT_S = 43200
ROOT_SESSION_TOKEN_MAX_S = 3600
ASSUME_ROLE_MIN_S = 900
ASSUME_ROLE_DEFAULT_S = 3600
ROLE_CHAINING_MAX_S = 3600
MAX_SESSION_POLICY_ARNS = 10
MAX_SESSION_TAGS = 50


class PackedPolicyTooLarge(ClientError):
    code = "PackedPolicyTooLarge"


class RegionDisabled(ClientError):
    code = "RegionDisabledException"
    http_status = 403


@dataclass(frozen=True)
class IssuedCredentials:
    """What STS returns once: the secret and the token are not recoverable afterwards."""

    credential: TemporaryCredential
    secret_access_key: str
    session_token: str
    packed_policy_size: int | None = None


def hash_session_token(token: str) -> str:
    """How a session token is stored: its SHA-256, so a database dump cannot replay it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _issue(**fields: Any) -> IssuedCredentials:
    secret = naming.new_secret_access_key()
    token = secrets.token_urlsafe(96)
    key_id = naming.new_access_key_id(temporary=True)
    while TemporaryCredential.objects.filter(pk=key_id).exists():
        key_id = naming.new_access_key_id(temporary=True)
    credential = TemporaryCredential(
        access_key_id=key_id,
        secret_encrypted=crypto.encrypt(secret),
        session_token_hash=hash_session_token(token),
        **fields,
    )
    credential.save(force_insert=True)
    return IssuedCredentials(credential=credential, secret_access_key=secret, session_token=token)


def _check_mfa(
    *, user: User | None, account: Account, serial_number: str | None, token_code: str | None
) -> bool:
    """True when a valid MFA code of the caller's own device came with the request."""
    if not serial_number and not token_code:
        return False
    if not serial_number or not token_code:
        raise ValidationError("SerialNumber and TokenCode must be given together.")
    failed = AccessDenied("MultiFactorAuthentication failed with invalid MFA one time pass code. ")
    if user is None:
        raise failed
    try:
        device = mfa.get_device(account=account, serial_number=serial_number)
    except NoSuchEntity as exc:
        raise failed from exc
    if device.user_id != user.pk or device.enabled_at is None:
        raise failed
    if mfa.verify_totp(device, token_code) is not mfa.Verification.ACCEPTED:
        raise failed
    return True


def get_session_token(
    *,
    actor: Actor,
    duration_seconds: int | None = None,
    serial_number: str | None = None,
    token_code: str | None = None,
) -> IssuedCredentials:
    """``sts:GetSessionToken`` for a user (or root) signing with a long-term key.

    900–129,600 s (default 43,200); the root user at most 3,600 s. With ``SerialNumber`` and
    ``TokenCode`` the session is MFA-authenticated, which makes ``aws:MultiFactorAuthPresent``
    true for it and lets it call IAM at all.
    """
    user: User = actor.user
    if actor.session is not None or user is None:
        raise AccessDenied("Cannot call GetSessionToken with session credentials")
    default = ROOT_SESSION_TOKEN_MAX_S if user.is_root else SESSION_TOKEN_DEFAULT_S
    duration = default if duration_seconds is None else duration_seconds
    maximum = ROOT_SESSION_TOKEN_MAX_S if user.is_root else SESSION_TOKEN_MAX_S
    if not SESSION_TOKEN_MIN_S <= duration <= maximum:
        raise ValidationError(
            f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to "
            f"satisfy constraint: Member must have value "
            + (
                f"greater than or equal to {SESSION_TOKEN_MIN_S}"
                if duration < SESSION_TOKEN_MIN_S
                else f"less than or equal to {maximum}"
            )
        )
    mfa_ok = _check_mfa(
        user=user, account=user.account, serial_number=serial_number, token_code=token_code
    )
    now = timezone.now()
    with transaction.atomic():
        issued = _issue(
            account_id=user.account_id,
            user=user,
            issued_at=now,
            expires_at=now + timedelta(seconds=duration),
            mfa_authenticated=mfa_ok,
            mfa_authenticated_at=now if mfa_ok else None,
        )
        record_event(
            actor=actor,
            action="sts:GetSessionToken",
            resource_arn=user.arn,
            category="signin",
            parameters={
                "DurationSeconds": duration,
                "SerialNumber": serial_number,
            },
            after=_credential_snapshot(issued.credential),
        )
    return issued


def _credential_snapshot(credential: TemporaryCredential) -> dict[str, Any]:
    return {
        "AccessKeyId": credential.access_key_id,
        "Expiration": credential.expires_at,
        "MFAAuthenticated": credential.mfa_authenticated,
        "RoleSessionName": credential.session_name or None,
        "SourceIdentity": credential.source_identity or None,
        "SessionTags": credential.session_tags or None,
    }


def role_by_arn(role_arn: str) -> Role:
    """The role an ARN names, in any account of this installation."""
    parts = naming.parse_arn(role_arn)
    if not parts or parts["service"] != "iam" or not parts["resource"].startswith("role/"):
        raise ValidationError(
            f"1 validation error detected: Value '{role_arn}' at 'roleArn' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            r"[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+"
        )
    name = parts["resource"].rsplit("/", 1)[1]
    role = (
        Role.objects.filter(account_id=parts["account"], name__iexact=name)
        .select_related("account", "permissions_boundary")
        .first()
    )
    if role is None or role.arn != role_arn:
        # AWS answers an unknown role as a denied one, so callers cannot probe for roles.
        raise NoSuchEntity(role_arn)
    return role


def session_policy_size_percent(policy: str | None, policy_arns: Sequence[str]) -> int:
    """``PackedPolicySize``: how full the packed session policy is, as a percentage."""
    size = quotas.policy_size(policy or "") + sum(len(arn) for arn in policy_arns)
    return min(100, (size * 100) // quotas.SESSION_POLICY_SIZE) if size else 0


def validate_session_policy(policy: str | None, policy_arns: Sequence[str]) -> None:
    from policies import engine

    if policy is not None:
        if quotas.policy_size(policy) > quotas.SESSION_POLICY_SIZE:
            raise PackedPolicyTooLarge(
                "Packed size of the session policy and session tags exceeds the limit."
            )
        try:
            engine.parse_policy(policy)
        except engine.PolicyParseError as exc:
            raise MalformedPolicyDocument(exc.message) from exc
    if len(policy_arns) > MAX_SESSION_POLICY_ARNS:
        raise ValidationError(
            "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_SESSION_POLICY_ARNS}"
        )
    for arn in policy_arns:
        naming.parse_policy_arn(arn)


def session_tags(
    *,
    caller_session: TemporaryCredential | None,
    tags: Sequence[Mapping[str, str]],
    transitive_tag_keys: Sequence[str],
) -> tuple[list[dict[str, str]], list[str]]:
    """The new session's tags and transitive keys: the caller's transitive tags carry over
    into a chained session and cannot be overridden by it (IAM User Guide, "Chaining roles with
    session tags")."""
    clean = naming.validate_tags(tags) if tags else []
    given = {t["Key"].lower() for t in clean}
    for key in transitive_tag_keys:
        if key.lower() not in given:
            raise InvalidInput(
                f"The transitive tag key {key} is not one of the session tags of this request."
            )
    carried: list[dict[str, str]] = []
    carried_keys: list[str] = []
    if caller_session is not None and caller_session.transitive_tag_keys:
        wanted = {k.lower() for k in caller_session.transitive_tag_keys}
        for tag in caller_session.session_tags:
            if tag["Key"].lower() in wanted:
                if tag["Key"].lower() in given:
                    raise InvalidInput(
                        f"The session tag {tag['Key']} is transitive from the calling session "
                        "and cannot be overridden."
                    )
                carried.append(dict(tag))
                carried_keys.append(tag["Key"])
    merged = carried + clean
    if len(merged) > MAX_SESSION_TAGS:
        raise PackedPolicyTooLarge(
            "Packed size of the session policy and session tags exceeds the limit."
        )
    return merged, carried_keys + list(transitive_tag_keys)


def assume_role(
    *,
    actor: Actor,
    role: Role,
    role_session_name: str,
    duration_seconds: int | None = None,
    policy: str | None = None,
    policy_arns: Sequence[str] = (),
    tags: Sequence[Mapping[str, str]] = (),
    transitive_tag_keys: Sequence[str] = (),
    source_identity: str | None = None,
    mfa_authenticated: bool = False,
) -> IssuedCredentials:
    """``sts:AssumeRole`` after the caller has been authorized by the role's trust policy
    (the Query API asks ``policies.access.authorize_assume_role`` first).

    Duration 900 s to the role's ``MaxSessionDuration`` (default 3,600); a role session
    assuming another role (role chaining) is capped at 3,600 s.
    """
    caller_session: TemporaryCredential | None = actor.session
    chained = caller_session is not None and caller_session.role_id is not None
    duration = ASSUME_ROLE_DEFAULT_S if duration_seconds is None else duration_seconds
    if chained and duration > ROLE_CHAINING_MAX_S:
        raise ValidationError(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed "
            "by role chaining."
        )
    if duration > role.max_session_duration:
        raise ValidationError(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        )
    if duration < ASSUME_ROLE_MIN_S:
        raise ValidationError(
            f"1 validation error detected: Value '{duration}' at 'durationSeconds' failed to "
            f"satisfy constraint: Member must have value greater than or equal to "
            f"{ASSUME_ROLE_MIN_S}"
        )
    validate_session_policy(policy, policy_arns)
    all_tags, all_transitive = session_tags(
        caller_session=caller_session, tags=tags, transitive_tag_keys=transitive_tag_keys
    )
    if caller_session is not None and caller_session.source_identity:
        if source_identity and source_identity != caller_session.source_identity:
            raise AccessDenied("The source identity of a session cannot be changed once it is set.")
        source_identity = caller_session.source_identity
    now = timezone.now()
    with transaction.atomic():
        issued = _issue(
            account_id=role.account_id,
            role=role,
            session_name=role_session_name,
            source_identity=source_identity or "",
            issued_at=now,
            expires_at=now + timedelta(seconds=duration),
            mfa_authenticated=mfa_authenticated,
            mfa_authenticated_at=now if mfa_authenticated else None,
            session_policy=policy or "",
            session_policy_arns=list(policy_arns),
            session_tags=all_tags,
            transitive_tag_keys=all_transitive,
            assumed_by_arn=actor.arn,
        )
        record_event(
            actor=actor,
            action="sts:AssumeRole",
            resource_arn=role.arn,
            category="signin",
            account_id=role.account_id,
            parameters={
                "RoleArn": role.arn,
                "RoleSessionName": role_session_name,
                "DurationSeconds": duration,
                "Policy": json.loads(policy) if policy else None,
                "PolicyArns": list(policy_arns),
                "Tags": all_tags,
                "TransitiveTagKeys": all_transitive,
                "SourceIdentity": source_identity,
            },
            after=_credential_snapshot(issued.credential),
        )
    return IssuedCredentials(
        credential=issued.credential,
        secret_access_key=issued.secret_access_key,
        session_token=issued.session_token,
        packed_policy_size=session_policy_size_percent(policy, policy_arns),
    )


def check_assume_role_mfa(
    *, actor: Actor, serial_number: str | None, token_code: str | None
) -> bool:
    """MFA given with AssumeRole: it must be the calling user's device and a fresh code."""
    user = actor.user if actor.session is None or actor.session.role_id is None else None
    account = user.account if user is not None else Account.objects.get(pk=actor.account_id)
    return _check_mfa(
        user=user, account=account, serial_number=serial_number, token_code=token_code
    )
