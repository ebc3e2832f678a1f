"""IAM identifiers: names, paths, unique ids, ARNs and tags, with AWS's validation messages.

References: IAM User Guide "IAM identifiers" and "IAM and AWS STS quotas"; IAM API Reference
parameter constraints (the ``ValidationError`` texts below copy the API's wording).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence

from identity.errors import InvalidInput, LimitExceeded, ValidationError

PARTITION = "aws"
AWS_MANAGED_ACCOUNT = "aws"

# Unique id prefixes (IAM User Guide, "Unique identifiers").
USER_ID_PREFIX = "AIDA"
GROUP_ID_PREFIX = "AGPA"
ROLE_ID_PREFIX = "AROA"
POLICY_ID_PREFIX = "ANPA"
INSTANCE_PROFILE_ID_PREFIX = "AIPA"
ACCESS_KEY_PREFIX = "AKIA"
TEMPORARY_ACCESS_KEY_PREFIX = "ASIA"

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"  # noqa: S105 - an alphabet, not a secret

NAME_PATTERN = re.compile(r"[\w+=,.@-]+", re.ASCII)
PATH_PATTERN = re.compile(r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)")
ACCOUNT_ID_PATTERN = re.compile(r"\d{12}")
ALIAS_PATTERN = re.compile(r"^[a-z0-9]([a-z0-9]|-(?!-))*[a-z0-9]$")

MAX_TAGS = 50


def new_unique_id(prefix: str) -> str:
    """A 21-character IAM unique id: the 4-letter prefix and 17 random characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def new_access_key_id(*, temporary: bool = False) -> str:
    return new_unique_id(TEMPORARY_ACCESS_KEY_PREFIX if temporary else ACCESS_KEY_PREFIX)[:20]


def new_secret_access_key() -> str:
    """A 40-character secret, the shape AWS issues (about 238 bits of entropy)."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def new_account_id() -> str:
    # An account id never starts with 0 so it survives being read as a number.
    return str(secrets.randbelow(9 * 10**11) + 10**11)


# --- ARNs --------------------------------------------------------------------------------


def iam_arn(account_id: str, resource: str) -> str:
    return f"arn:{PARTITION}:iam::{account_id}:{resource}"


def root_arn(account_id: str) -> str:
    return iam_arn(account_id, "root")


def user_arn(account_id: str, path: str, name: str) -> str:
    return iam_arn(account_id, f"user{path}{name}")


def group_arn(account_id: str, path: str, name: str) -> str:
    return iam_arn(account_id, f"group{path}{name}")


def role_arn(account_id: str, path: str, name: str) -> str:
    return iam_arn(account_id, f"role{path}{name}")


def policy_arn(account_id: str, path: str, name: str) -> str:
    return iam_arn(account_id, f"policy{path}{name}")


def instance_profile_arn(account_id: str, path: str, name: str) -> str:
    return iam_arn(account_id, f"instance-profile{path}{name}")


def mfa_arn(account_id: str, path: str, name: str) -> str:
    return iam_arn(account_id, f"mfa{path}{name}")


def oidc_provider_arn(account_id: str, host_and_path: str) -> str:
    return iam_arn(account_id, f"oidc-provider/{host_and_path}")


def assumed_role_arn(account_id: str, role_name: str, session_name: str) -> str:
    return f"arn:{PARTITION}:sts::{account_id}:assumed-role/{role_name}/{session_name}"


_ARN_PATTERN = re.compile(
    r"^arn:(?P<partition>[\w-]+):(?P<service>[\w-]+):(?P<region>[\w-]*):"
    r"(?P<account>\d{12}|aws|):(?P<resource>.+)$"
)


def parse_arn(arn: str) -> dict[str, str] | None:
    """Split an ARN into its parts, or None if it is not one."""
    match = _ARN_PATTERN.match(arn)
    return match.groupdict() if match else None


def parse_policy_arn(arn: str) -> tuple[str, str, str]:
    """(account, path, name) of a managed policy ARN; ``InvalidInput`` if it is not one."""
    parts = parse_arn(arn)
    if not parts or parts["service"] != "iam" or not parts["resource"].startswith("policy/"):
        raise InvalidInput(f"ARN {arn} is not valid.")
    rest = parts["resource"][len("policy") :]
    path, _, name = rest.rpartition("/")
    return parts["account"], path + "/", name


# --- Validation --------------------------------------------------------------------------


def _constraint(value: str, field: str, constraint: str) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy "
        f"constraint: {constraint}"
    )


def validate_name(value: str, *, field: str, max_length: int) -> str:
    """A user, group, role, policy or instance-profile name (IAM API parameter rules)."""
    if not value:
        raise _constraint(value, field, "Member must have length greater than or equal to 1")
    if len(value) > max_length:
        raise _constraint(
            value, field, f"Member must have length less than or equal to {max_length}"
        )
    if not NAME_PATTERN.fullmatch(value):
        raise _constraint(
            value, field, r"Member must satisfy regular expression pattern: [\w+=,.@-]+"
        )
    return value


def validate_path(value: str, *, field: str = "path") -> str:
    if len(value) > 512:
        raise _constraint(value, field, "Member must have length less than or equal to 512")
    if not PATH_PATTERN.fullmatch(value):
        raise _constraint(
            value,
            field,
            r"Member must satisfy regular expression pattern: "
            r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)",
        )
    return value


def validate_path_prefix(value: str) -> str:
    if len(value) > 512 or not value.startswith("/"):
        raise _constraint(
            value,
            "pathPrefix",
            r"Member must satisfy regular expression pattern: \u002F[\u0021-\u007F]*",
        )
    return value


def validate_account_alias(value: str) -> str:
    """3–63 lower-case letters, digits and single hyphens, not starting or ending with a
    hyphen, and not only digits (so an alias can never be mistaken for an account id)."""
    if not 3 <= len(value) <= 63 or not ALIAS_PATTERN.match(value) or value.isdigit():
        raise _constraint(
            value,
            "accountAlias",
            "Member must satisfy regular expression pattern: "
            r"^[a-z0-9]([a-z0-9]|-(?!-)){1,61}[a-z0-9]$",
        )
    return value


_TAG_CHARS = re.compile(r"^[\w\s.:/=+\-@]*$")


def validate_tags(tags: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    """Tag rules for IAM (IAM User Guide, "Tagging IAM resources"): at most 50, key 1–128 and
    value 0–256 characters of letters, digits, spaces and ``_.:/=+-@``; the ``aws:`` prefix is
    reserved; keys are unique case-insensitively on one entity."""
    cleaned: list[dict[str, str]] = []
    seen: set[str] = set()
    for tag in tags:
        key = tag.get("Key")
        value = tag.get("Value", "")
        if key is None or not 1 <= len(key) <= 128 or not _TAG_CHARS.match(key):
            raise _constraint(
                str(key),
                "tags.member.key",
                r"Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+",
            )
        if value is None or len(value) > 256 or not _TAG_CHARS.match(value):
            raise _constraint(
                str(value),
                "tags.member.value",
                r"Member must satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]*",
            )
        if key.lower().startswith("aws:"):
            raise InvalidInput("User-defined tag keys can't start with 'aws:'.")
        if key.lower() in seen:
            raise InvalidInput(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            )
        seen.add(key.lower())
        cleaned.append({"Key": key, "Value": value})
    if len(cleaned) > MAX_TAGS:
        raise LimitExceeded(f"The number of tags has exceeded the limit of {MAX_TAGS}.")
    return cleaned


def validate_tag_keys(tag_keys: Sequence[str]) -> list[str]:
    """``UntagX``'s ``TagKeys``: at most 50 keys of 1–128 characters (IAM API Reference)."""
    if len(tag_keys) > MAX_TAGS:
        raise _constraint(
            str(list(tag_keys)),
            "tagKeys",
            f"Member must have length less than or equal to {MAX_TAGS}",
        )
    for key in tag_keys:
        if not 1 <= len(key) <= 128:
            raise _constraint(
                key, "tagKeys.member", "Member must have length less than or equal to 128"
            )
    return list(tag_keys)


def merge_tags(
    existing: Iterable[Mapping[str, str]], new: Sequence[Mapping[str, str]]
) -> list[dict[str, str]]:
    """TagX semantics: a new tag with an existing key (case-insensitive) replaces its value."""
    incoming = validate_tags(new)
    by_key = {t["Key"].lower(): dict(t) for t in existing}
    for tag in incoming:
        by_key[tag["Key"].lower()] = tag
    merged = list(by_key.values())
    if len(merged) > MAX_TAGS:
        raise LimitExceeded(f"The number of tags has exceeded the limit of {MAX_TAGS}.")
    return merged


def remove_tags(existing: Iterable[Mapping[str, str]], keys: Sequence[str]) -> list[dict[str, str]]:
    drop = {k.lower() for k in keys}
    return [dict(t) for t in existing if t["Key"].lower() not in drop]
