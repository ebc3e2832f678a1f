"""Condition operators, compiled once per statement.

Semantics follow https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
and .../reference_policies_condition-single-vs-multi-valued-context-keys.html:

* several operators in a block AND, several keys under an operator AND, several values
  for one key OR;
* a key missing from the request makes a condition false, except that a negated operator
  (``StringNotEquals``, ``NotIpAddress``, ``ArnNotLike`` ...) is then true, ``...IfExists``
  is then true, and ``ForAllValues:`` is true on a missing or empty key while
  ``ForAnyValue:`` is false (the well-known trap);
* ``ForAllValues:`` needs every request value to match some policy value, ``ForAnyValue:``
  needs one; with a negated operator each request value is tested for not matching.

Fail closed: a comparison that cannot be made (a request value that is not a number for a
``Numeric`` operator, a policy value that is not a date ...) makes the condition *false* in
an Allow statement and *true* in a Deny statement.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from socket import AF_INET as _AF_INET
from socket import inet_pton as _inet_pton
from typing import Any, Protocol

from .model import ConditionClause, ConditionValue
from .patterns import Pattern, Template, shared_pattern, template_or_text

ALL = 1
ANY = 2

# base operator -> (family, negated, comparison)
OPERATORS: dict[str, tuple[str, bool, str]] = {
    "StringEquals": ("string", False, "eq"),
    "StringNotEquals": ("string", True, "eq"),
    "StringEqualsIgnoreCase": ("string_ci", False, "eq"),
    "StringNotEqualsIgnoreCase": ("string_ci", True, "eq"),
    "StringLike": ("like", False, "like"),
    "StringNotLike": ("like", True, "like"),
    "NumericEquals": ("numeric", False, "eq"),
    "NumericNotEquals": ("numeric", True, "eq"),
    "NumericLessThan": ("numeric", False, "lt"),
    "NumericLessThanEquals": ("numeric", False, "le"),
    "NumericGreaterThan": ("numeric", False, "gt"),
    "NumericGreaterThanEquals": ("numeric", False, "ge"),
    "DateEquals": ("date", False, "eq"),
    "DateNotEquals": ("date", True, "eq"),
    "DateLessThan": ("date", False, "lt"),
    "DateLessThanEquals": ("date", False, "le"),
    "DateGreaterThan": ("date", False, "gt"),
    "DateGreaterThanEquals": ("date", False, "ge"),
    "Bool": ("bool", False, "eq"),
    "BinaryEquals": ("binary", False, "eq"),
    "IpAddress": ("ip", False, "in"),
    "NotIpAddress": ("ip", True, "in"),
    "ArnEquals": ("arn", False, "like"),
    "ArnLike": ("arn", False, "like"),
    "ArnNotEquals": ("arn", True, "like"),
    "ArnNotLike": ("arn", True, "like"),
    "Null": ("null", False, "null"),
}


class OperatorInfo:
    __slots__ = ("base", "comparison", "family", "if_exists", "name", "negated", "qualifier")

    def __init__(
        self,
        name: str,
        base: str,
        family: str,
        negated: bool,
        comparison: str,
        qualifier: int,
        if_exists: bool,
    ) -> None:
        self.name = name
        self.base = base
        self.family = family
        self.negated = negated
        self.comparison = comparison
        self.qualifier = qualifier
        self.if_exists = if_exists


@lru_cache(maxsize=1024)
def parse_operator(name: str) -> OperatorInfo | None:
    """Split ``ForAnyValue:StringLikeIfExists`` into its parts; None if unknown."""
    qualifier = 0
    rest = name
    if rest.startswith("ForAllValues:"):
        qualifier, rest = ALL, rest[len("ForAllValues:") :]
    elif rest.startswith("ForAnyValue:"):
        qualifier, rest = ANY, rest[len("ForAnyValue:") :]
    if_exists = False
    if rest.endswith("IfExists") and rest != "IfExists":
        if_exists, rest = True, rest[: -len("IfExists")]
    entry = OPERATORS.get(rest)
    if entry is None:
        return None
    family, negated, comparison = entry
    if family == "null" and (if_exists or qualifier):
        return None
    return OperatorInfo(name, rest, family, negated, comparison, qualifier, if_exists)


class Context(Protocol):
    """What a condition needs from the request: values by lower-cased key, and variables."""

    def values(self, key: str, spelled: str | None = None) -> Sequence[Any] | None: ...

    def var(self, key: str) -> str | None: ...


class ConditionValueError(ValueError):
    pass


# ---- converting values ------------------------------------------------------------------


def to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise ConditionValueError(f"not a string: {value!r}")


_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ConditionValueError("a boolean is not a number")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            return float(text)
    raise ConditionValueError(f"not a number: {value!r}")


_EPOCH_RE = re.compile(r"^-?\d+(\.\d+)?$")


def to_epoch(value: Any) -> float:
    """Seconds since the epoch, from a datetime, epoch seconds or an ISO 8601 string."""
    if isinstance(value, bool):
        raise ConditionValueError("a boolean is not a date")
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return dt.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if _EPOCH_RE.match(text):
            return float(text)
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ConditionValueError(f"not a date: {value!r}") from exc
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    raise ConditionValueError(f"not a date: {value!r}")


def to_bool_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    raise ConditionValueError(f"not a boolean: {value!r}")


def to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ConditionValueError(f"not base64: {value!r}") from exc
    raise ConditionValueError(f"not binary: {value!r}")


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def to_network(value: Any) -> IpNetwork:
    try:
        return _network(str(value).strip())
    except ValueError as exc:
        raise ConditionValueError(f"not an IP address or CIDR block: {value!r}") from exc


@lru_cache(maxsize=4096)
def _network(text: str) -> IpNetwork:
    # Shared: networks are immutable, and the same CIDR blocks recur across policies (the
    # validator and the compiler also both read each one).
    return ipaddress.ip_network(text, strict=False)


_ADDRESS_TYPES = (ipaddress.IPv4Address, ipaddress.IPv6Address)


def to_address(value: Any) -> IpAddr:
    if isinstance(value, _ADDRESS_TYPES):
        return value
    if not isinstance(value, str):
        raise ConditionValueError(f"not an IP address: {value!r}")
    text = value.strip()
    try:
        # A request's aws:SourceIp is nearly always a dotted quad: inet_pton reads one several
        # times faster than ipaddress, and accepts exactly the same ones (four decimal parts,
        # no leading zeros; the tests hold it to ipaddress). Anything else takes the long way.
        return ipaddress.IPv4Address(_inet_pton(_AF_INET, text))
    except OSError:
        pass
    try:
        return ipaddress.ip_address(text)
    except ValueError as exc:
        raise ConditionValueError(f"not an IP address: {value!r}") from exc


def to_arn(value: Any) -> str:
    if isinstance(value, str) and value.startswith("arn:") and value.count(":") >= 5:
        return value
    raise ConditionValueError(f"not an ARN: {value!r}")


def check_policy_value(family: str, value: ConditionValue) -> str | None:
    """Why a policy value cannot be used with an operator family (None when fine)."""
    try:
        if family == "numeric":
            to_number(value)
        elif family == "date":
            to_epoch(value)
        elif family in ("bool", "null"):
            to_bool_text(value)
        elif family == "binary":
            to_bytes(value)
        elif family == "ip":
            to_network(value)
        elif family == "arn" and not (
            value == "*" or (isinstance(value, str) and value.startswith("arn:"))
        ):
            raise ConditionValueError(f"not an ARN: {value!r}")
    except ConditionValueError as exc:
        return str(exc)
    return None


# ---- comparisons ------------------------------------------------------------------------

Cmp = Callable[[Any, Any, Callable[[str], "str | None"]], bool]
Conv = Callable[[Any], Any]


def _cmp_eq(v: Any, p: Any, _lookup: Any) -> bool:
    return bool(v == p)


def _cmp_lt(v: Any, p: Any, _lookup: Any) -> bool:
    return bool(v < p)


def _cmp_le(v: Any, p: Any, _lookup: Any) -> bool:
    return bool(v <= p)


def _cmp_gt(v: Any, p: Any, _lookup: Any) -> bool:
    return bool(v > p)


def _cmp_ge(v: Any, p: Any, _lookup: Any) -> bool:
    return bool(v >= p)


def _cmp_like(v: str, p: Pattern, lookup: Callable[[str], str | None]) -> bool:
    return p.match(v, lookup)


def _cmp_in(v: IpAddr, p: IpNetwork, _lookup: Any) -> bool:
    return v.version == p.version and v in p


_CMPS: dict[str, Cmp] = {
    "eq": _cmp_eq,
    "lt": _cmp_lt,
    "le": _cmp_le,
    "gt": _cmp_gt,
    "ge": _cmp_ge,
    "like": _cmp_like,
    "in": _cmp_in,
}


def _lower_text(value: Any) -> str:
    return to_text(value).lower()


_CONV: dict[str, Conv] = {
    "string": to_text,
    "string_ci": _lower_text,
    "like": to_text,
    "numeric": to_number,
    "date": to_epoch,
    "bool": to_bool_text,
    "binary": to_bytes,
    "ip": to_address,
    "arn": to_arn,
}


class _BadPolicyValue:
    """A policy value that could not be prepared; comparing against it is an error."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _prepare(family: str, value: Any, variables: bool) -> Any:
    """Turn one policy value into what the comparison wants (may raise)."""
    if family == "like":
        return shared_pattern(to_text(value), False, False, variables)
    if family == "arn":
        return shared_pattern(to_text(value), True, False, variables)
    if family == "ip":
        return to_network(value)
    return _CONV[family](value)


class CompiledCondition:
    """One (operator, key) pair with its values prepared. ``test`` never raises."""

    __slots__ = (
        "cmp",
        "conv",
        "key",
        "null_expect",
        "on_error",
        "op",
        "spelled_key",
        "templates",
        "values",
    )

    def __init__(self, clause: ConditionClause, *, variables: bool, deny: bool) -> None:
        op = parse_operator(clause.operator)
        if op is None:  # the parser rejects these; never let one through as a match
            raise ValueError(f"unknown condition operator {clause.operator}")
        self.op = op
        self.key = clause.key.lower()
        self.spelled_key = clause.key
        self.on_error = deny
        self.conv: Conv = _CONV.get(op.family, to_text)
        self.cmp: Cmp = _CMPS.get(op.comparison, _cmp_eq)
        prepared: list[Any] = []
        templates: list[Template] = []
        self.null_expect: tuple[bool, ...] = ()
        if op.family == "null":
            expect: list[bool] = []
            for value in clause.values:
                try:
                    expect.append(to_bool_text(value) == "true")
                except ConditionValueError as exc:
                    prepared.append(_BadPolicyValue(str(exc)))
            self.null_expect = tuple(expect)
        else:
            for value in clause.values:
                item: Any = value
                if isinstance(value, str) and op.family not in ("like", "arn"):
                    item = template_or_text(value, variables=variables)
                if isinstance(item, Template):
                    templates.append(item)
                    continue
                try:
                    prepared.append(_prepare(op.family, item, variables))
                except (ConditionValueError, ValueError) as exc:
                    prepared.append(_BadPolicyValue(str(exc)))
        self.values: tuple[Any, ...] = tuple(prepared)
        self.templates: tuple[Template, ...] = tuple(templates)

    def test(self, ctx: Context) -> bool:
        try:
            return self._test(ctx)
        except Exception:
            # Fail closed: see the module docstring.
            return self.on_error

    def _policy_values(self, ctx: Context) -> tuple[Any, ...]:
        if not self.templates:
            return self.values
        resolved = list(self.values)
        for template in self.templates:
            text = template.resolve(ctx.var)
            if text is not None:  # an unresolvable variable makes its value not match
                resolved.append(_prepare(self.op.family, text, False))
        return tuple(resolved)

    def _test(self, ctx: Context) -> bool:
        op = self.op
        vals = ctx.values(self.key, self.spelled_key)
        if op.family == "null":
            if self.values:  # a policy value that is neither true nor false
                raise ConditionValueError(self.values[0].reason)
            absent = not vals
            return any(expect == absent for expect in self.null_expect)
        if not vals:
            if op.if_exists or op.qualifier == ALL:
                return True
            if op.qualifier == ANY:
                return False
            return op.negated
        pvals = self._policy_values(ctx)
        for p in pvals:
            if isinstance(p, _BadPolicyValue):
                raise ConditionValueError(p.reason)
        conv, cmp, lookup = self.conv, self.cmp, ctx.var
        if op.qualifier == ALL:
            for v in vals:
                cv = conv(v)
                hit = any(cmp(cv, p, lookup) for p in pvals)
                if hit == op.negated:
                    return False
            return True
        if op.qualifier == ANY:
            for v in vals:
                cv = conv(v)
                hit = any(cmp(cv, p, lookup) for p in pvals)
                if hit != op.negated:
                    return True
            return False
        for v in vals:
            cv = conv(v)
            for p in pvals:
                if cmp(cv, p, lookup):
                    return not op.negated
        return op.negated


def compile_conditions(
    clauses: Sequence[ConditionClause], *, variables: bool, deny: bool
) -> tuple[CompiledCondition, ...]:
    return tuple(CompiledCondition(c, variables=variables, deny=deny) for c in clauses)
