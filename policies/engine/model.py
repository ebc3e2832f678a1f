"""The parsed form of an IAM policy document, and the small value types around it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypeVar

Span = tuple[int, int, int, int]
Path = tuple[str | int, ...]
FindingType = Literal["ERROR", "SECURITY_WARNING", "WARNING", "SUGGESTION"]
ConditionValue = str | int | float | bool
T = TypeVar("T")


def build_frozen(cls: type[T], **fields: Any) -> T:
    """Make a frozen dataclass instance without its generated ``__init__``, which pays an
    ``object.__setattr__`` call per field: compiling and deciding create many of these."""
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


class PolicyType(StrEnum):
    """The kinds of document IAM validates differently (Access Analyzer's names).

    Permissions boundaries and session policies are IDENTITY documents.
    """

    IDENTITY = "IDENTITY_POLICY"
    RESOURCE = "RESOURCE_POLICY"
    TRUST = "ROLE_TRUST_POLICY"


class PolicyParseError(ValueError):
    """A document IAM would reject with ``MalformedPolicyDocument``.

    ``message`` is the text AWS returns, e.g. "Syntax errors in policy."; ``path`` points
    at the offending element and ``span`` at its place in the submitted text, when known.
    """

    def __init__(self, message: str, path: Path = (), span: Span | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.span = span


@dataclass(frozen=True)
class Finding:
    """One validation finding, shaped like IAM Access Analyzer's ValidatePolicy output."""

    finding_type: FindingType
    issue_code: str
    message: str
    path: Path
    span: Span | None


@dataclass(frozen=True)
class PrincipalSpec:
    """The Principal or NotPrincipal element. ``any`` is ``"*"`` or ``{"AWS": "*"}``."""

    any: bool = False
    aws: tuple[str, ...] = ()
    federated: tuple[str, ...] = ()
    service: tuple[str, ...] = ()
    canonical_user: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConditionClause:
    """One ``operator -> key -> values`` entry of a Condition block."""

    operator: str
    key: str
    values: tuple[ConditionValue, ...]


@dataclass(frozen=True)
class Statement:
    """One statement. ``actions`` holds NotAction's list when ``not_action`` is set (and
    likewise for resources); ``resources`` is None when the element is absent, which only
    resource-based and trust policies allow."""

    index: int
    sid: str | None
    effect: Literal["Allow", "Deny"]
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...] | None
    not_resource: bool
    principal: PrincipalSpec | None
    not_principal: bool
    conditions: tuple[ConditionClause, ...]
    span: Span | None


@dataclass(frozen=True)
class Policy:
    """A parsed, valid policy document. ``text`` is the document as submitted (or the
    canonical JSON of a mapping), so it can be stored and published unchanged."""

    version: str | None
    id: str | None
    statements: tuple[Statement, ...]
    policy_type: PolicyType
    text: str
    document: Mapping[str, Any]

    @property
    def variables_enabled(self) -> bool:
        # Policy variables are only substituted in Version 2012-10-17 documents:
        # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
        return self.version == "2012-10-17"
