"""Checking and parsing policy documents.

One checker walks the document and reports every issue it finds. ``parse_policy`` raises
the first issue IAM itself would reject (with IAM's ``MalformedPolicyDocument`` text), and
``validate`` (in validation.py) turns all of them into Access-Analyzer-like findings.

Grammar: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html
and the element pages under reference_policies_elements_*.html.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from .conditions import check_policy_value, parse_operator
from .jsonpos import JsonSyntaxError, Located, parse_located
from .model import (
    ConditionClause,
    ConditionValue,
    FindingType,
    Path,
    Policy,
    PolicyParseError,
    PolicyType,
    PrincipalSpec,
    Span,
    Statement,
    build_frozen,
)

SYNTAX = "Syntax errors in policy."
VERSIONS = ("2012-10-17", "2008-10-17")
TOP_FIELDS = ("Version", "Id", "Statement")
STATEMENT_FIELDS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)
PRINCIPAL_KINDS = ("AWS", "Federated", "Service", "CanonicalUser")
_STATEMENT_FIELD_SET = frozenset(STATEMENT_FIELDS)
# Tuples, not ``str | list``: a union is built anew each time the expression runs.
_STR_OR_LIST = (str, list)
_SCALAR = (str, int, float, bool)

_ACTION_RE = re.compile(r"^[A-Za-z0-9*?-]+:[A-Za-z0-9*?_.-]*$")
_SID_RE = re.compile(r"^[0-9A-Za-z]*$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_AWS_PRINCIPAL_RE = re.compile(
    r"^arn:[a-z-]+:(iam::(\d{12}|aws):(root|user/.+|role/.+|federated-user/.+)"
    r"|sts::\d{12}:(assumed-role/[^/]+/.+|federated-user/.+))$"
)


@dataclass(frozen=True)
class Issue:
    """Something the checker found. ``aws_message`` is set when IAM rejects the document."""

    finding_type: FindingType
    issue_code: str
    message: str
    path: Path
    aws_message: str | None = None
    on_key: bool = False


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class _Checker:
    def __init__(self, doc: Any, policy_type: PolicyType, *, notes: bool = True) -> None:
        self.doc = doc
        self.policy_type = policy_type
        self.issues: list[Issue] = []
        # Parsing only needs the errors IAM rejects; warnings and suggestions cost time.
        self.notes = notes

    def error(
        self, code: str, message: str, path: Path, aws: str | None = SYNTAX, on_key: bool = False
    ) -> None:
        self.issues.append(Issue("ERROR", code, message, path, aws, on_key))

    def note(self, kind: FindingType, code: str, message: str, path: Path) -> None:
        if self.notes:
            self.issues.append(Issue(kind, code, message, path, None))

    def run(self) -> list[Issue]:
        doc = self.doc
        if not isinstance(doc, dict):
            self.error("INVALID_POLICY_STRUCTURE", "A policy must be a JSON object.", ())
            return self.issues
        for key in doc:
            if key not in TOP_FIELDS:
                self.error(
                    "UNKNOWN_FIELD",
                    f"The policy element {key} is not recognised.",
                    (key,),
                    f"Unknown field {key}",
                    on_key=True,
                )
        if "Version" not in doc:
            self.note(
                "WARNING",
                "MISSING_VERSION",
                "Add Version 2012-10-17: without it, policy variables such as "
                "${aws:username} are treated as literal text.",
                (),
            )
        elif doc["Version"] not in VERSIONS:
            self.error(
                "INVALID_VERSION",
                "Version must be 2012-10-17 (or the legacy 2008-10-17).",
                ("Version",),
                "Policy document must be version 2012-10-17 or greater.",
            )
        elif doc["Version"] == "2008-10-17" and "${" in json.dumps(doc.get("Statement")):
            self.note(
                "WARNING",
                "POLICY_VARIABLE_IN_OLD_VERSION",
                "Policy variables are only substituted in Version 2012-10-17; here "
                "they are literal text.",
                ("Version",),
            )
        if "Id" in doc and not isinstance(doc["Id"], str):
            self.error("INVALID_ID", "Id must be a string.", ("Id",))
        if "Statement" not in doc:
            self.error(
                "MISSING_STATEMENT",
                "The policy has no Statement element.",
                (),
                "Missing required field Statement",
            )
            return self.issues
        stmts = doc["Statement"]
        if isinstance(stmts, dict):
            self.statement(stmts, ("Statement",))
        elif isinstance(stmts, list):
            if not stmts:
                self.error("MISSING_STATEMENT", "The Statement list is empty.", ("Statement",))
            for i, stmt in enumerate(stmts):
                self.statement(stmt, ("Statement", i))
            self.duplicate_sids(stmts)
        else:
            self.error(
                "INVALID_STATEMENT", "Statement must be an object or a list.", ("Statement",)
            )
        return self.issues

    def duplicate_sids(self, stmts: list[Any]) -> None:
        seen: set[str] = set()
        for i, stmt in enumerate(stmts):
            sid = stmt.get("Sid") if isinstance(stmt, dict) else None
            if not isinstance(sid, str) or not sid:
                continue
            if sid in seen:
                self.error(
                    "DUPLICATE_SID",
                    f"The statement ID {sid} is used more than once in this policy.",
                    ("Statement", i, "Sid"),
                    "Statement IDs (SID) in a single policy must be unique.",
                )
            seen.add(sid)

    def statement(self, stmt: Any, path: Path) -> None:
        if not isinstance(stmt, dict):
            self.error("INVALID_STATEMENT", "A statement must be a JSON object.", path)
            return
        for key in stmt:
            if key not in _STATEMENT_FIELD_SET:
                self.error(
                    "UNKNOWN_FIELD",
                    f"The statement element {key} is not recognised.",
                    (*path, key),
                    f"Unknown field {key}",
                    on_key=True,
                )
        self.sid(stmt, path)
        effect = stmt.get("Effect")
        if "Effect" not in stmt:
            self.error(
                "MISSING_EFFECT",
                'The statement has no Effect; add "Effect": "Allow" or "Deny".',
                path,
                "Missing required field Effect",
            )
        elif effect not in ("Allow", "Deny"):
            self.error(
                "INVALID_EFFECT",
                f"Effect must be Allow or Deny, not {json.dumps(effect)}.",
                (*path, "Effect"),
                f"Invalid effect: {effect}",
            )
        self.principal(stmt, path)
        self.actions(stmt, path, effect)
        self.resources(stmt, path, effect)
        if "Condition" in stmt:
            self.condition(stmt["Condition"], (*path, "Condition"))

    def sid(self, stmt: dict[str, Any], path: Path) -> None:
        if "Sid" not in stmt:
            return
        sid = stmt["Sid"]
        if not isinstance(sid, str):
            self.error("INVALID_SID", "Sid must be a string.", (*path, "Sid"))
        elif self.policy_type == PolicyType.IDENTITY and not _SID_RE.match(sid):
            self.error(
                "INVALID_SID",
                "In identity-based policies a Sid may only contain letters and digits.",
                (*path, "Sid"),
                "Statement IDs (SID) must be alpha-numeric. Check that your input "
                "satisfies the regular expression [0-9A-Za-z]*",
            )

    def principal(self, stmt: dict[str, Any], path: Path) -> None:
        if "Principal" not in stmt and "NotPrincipal" not in stmt:
            present: list[str] = []
        else:
            present = [k for k in ("Principal", "NotPrincipal") if k in stmt]
        if self.policy_type == PolicyType.IDENTITY:
            for key in present:
                self.error(
                    "PRINCIPAL_IN_IDENTITY_POLICY",
                    f"Identity-based policies cannot have a {key} element: the principal "
                    "is whoever the policy is attached to.",
                    (*path, key),
                    f"Has prohibited field {key}",
                    on_key=True,
                )
            return
        if not present:
            self.error(
                "MISSING_PRINCIPAL",
                "Resource-based and trust policies must name a Principal.",
                path,
                "Missing required field Principal",
            )
            return
        if len(present) == 2:
            self.error(
                "PRINCIPAL_AND_NOT_PRINCIPAL",
                "A statement cannot have both Principal and NotPrincipal.",
                path,
            )
        for key in present:
            self.principal_value(stmt[key], (*path, key))
        if "NotPrincipal" in stmt and stmt.get("Effect") == "Allow":
            self.note(
                "WARNING",
                "ALLOW_WITH_NOT_PRINCIPAL",
                "Allow with NotPrincipal grants access to every principal not listed, "
                "including anonymous users.",
                (*path, "NotPrincipal"),
            )

    def principal_value(self, value: Any, path: Path) -> None:
        if value == "*":
            return
        if not isinstance(value, dict) or not value:
            self.error("INVALID_PRINCIPAL", 'Principal must be "*" or an object.', path)
            return
        for kind, entries in value.items():
            for j, entry in enumerate(_as_list(entries)):
                epath = (*path, kind, j) if isinstance(entries, list) else (*path, kind)
                bad = kind not in PRINCIPAL_KINDS or not isinstance(entry, str) or not entry
                if not bad and kind == "AWS" and entry != "*":
                    bad = not (_ACCOUNT_RE.match(entry) or _AWS_PRINCIPAL_RE.match(entry))
                if bad:
                    self.error(
                        "INVALID_PRINCIPAL",
                        f"{json.dumps(entry)} is not a valid {kind} principal.",
                        epath,
                        f'Invalid principal in policy: "{kind}":{json.dumps(entry)}',
                    )

    def actions(self, stmt: dict[str, Any], path: Path, effect: Any) -> None:
        has_action, has_not = "Action" in stmt, "NotAction" in stmt
        if has_action and has_not:
            self.error(
                "ACTION_AND_NOT_ACTION", "A statement cannot have both Action and NotAction.", path
            )
            return
        if not (has_action or has_not):
            self.error(
                "MISSING_ACTION",
                "The statement has no Action or NotAction element.",
                path,
                "Policy statement must contain actions.",
            )
            return
        key = "Action" if has_action else "NotAction"
        value = stmt[key]
        if value == [] or not isinstance(value, _STR_OR_LIST):
            self.error(
                "MISSING_ACTION",
                f"{key} must be an action name or a non-empty list of them.",
                (*path, key),
                "Policy statement must contain actions.",
            )
            return
        seen: set[str] = set()
        for j, action in enumerate(_as_list(value)):
            if not isinstance(action, str) or not (action == "*" or _ACTION_RE.match(action)):
                self.error(
                    "INVALID_ACTION",
                    f"{json.dumps(action)} is not an action: write service:Action, e.g. "
                    "iam:GetUser.",
                    (*path, key, j) if isinstance(value, list) else (*path, key),
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                )
                continue
            if not self.notes:
                continue
            lower = action.lower()
            if lower in seen:
                self.note(
                    "SUGGESTION",
                    "REDUNDANT_ACTION",
                    f"{action} is listed more than once.",
                    (*path, key, j) if isinstance(value, list) else (*path, key),
                )
            seen.add(lower)
        if self.notes:
            self.redundant_wildcards(
                [a for a in _as_list(value) if isinstance(a, str)], key, path, value
            )
        if effect == "Allow" and has_not:
            self.note(
                "WARNING",
                "ALLOW_WITH_NOT_ACTION",
                "Allow with NotAction allows every action not listed, including actions "
                "of services added later; list the allowed actions instead.",
                (*path, "NotAction"),
            )
        if (
            self.notes
            and effect == "Allow"
            and has_action
            and self.policy_type == PolicyType.IDENTITY
        ):
            self.pass_role(stmt, path, value)

    def redundant_wildcards(self, actions: list[str], key: str, path: Path, value: Any) -> None:
        from .patterns import Pattern

        patterns = [(a, Pattern(a, arn=False, ignore_case=True)) for a in actions if "*" in a]
        patterns = list(dict((a.lower(), (a, p)) for a, p in patterns).values())
        if not patterns:
            return
        for j, action in enumerate(_as_list(value)):
            if not isinstance(action, str):
                continue
            lower = action.lower()
            for source, pattern in patterns:
                if source.lower() != lower and pattern.match(lower, None):
                    apath = (*path, key, j) if isinstance(value, list) else (*path, key)
                    self.note(
                        "SUGGESTION",
                        "REDUNDANT_ACTION",
                        f"{action} is already covered by {source} in the same statement.",
                        apath,
                    )
                    break

    def pass_role(self, stmt: dict[str, Any], path: Path, actions: Any) -> None:
        from .patterns import Pattern

        covers = any(
            isinstance(a, str)
            and Pattern(a, arn=False, ignore_case=True).match("iam:passrole", None)
            for a in _as_list(actions)
        )
        resources = stmt.get("Resource")
        if covers and "*" in _as_list(resources):
            self.note(
                "SECURITY_WARNING",
                "PASS_ROLE_WITH_STAR_IN_RESOURCE",
                'Allowing iam:PassRole on Resource "*" lets this principal hand any role '
                "to a service; name the roles it may pass.",
                (*path, "Resource"),
            )

    def resources(self, stmt: dict[str, Any], path: Path, effect: Any) -> None:
        if "NotResource" not in stmt:
            present = ["Resource"] if "Resource" in stmt else []
        else:
            present = [k for k in ("Resource", "NotResource") if k in stmt]
        if self.policy_type == PolicyType.TRUST:
            for key in present:
                self.error(
                    "RESOURCE_IN_TRUST_POLICY",
                    f"A role trust policy cannot have a {key} element: it applies to the role.",
                    (*path, key),
                    f"Has prohibited field {key}",
                    on_key=True,
                )
            return
        if not present:
            if self.policy_type == PolicyType.IDENTITY:
                self.error(
                    "MISSING_RESOURCE",
                    "The statement has no Resource or NotResource element.",
                    path,
                    "Policy statement must contain resources.",
                )
            return
        if len(present) == 2:
            self.error(
                "RESOURCE_AND_NOT_RESOURCE",
                "A statement cannot have both Resource and NotResource.",
                path,
            )
            return
        key = present[0]
        value = stmt[key]
        if value == [] or not isinstance(value, _STR_OR_LIST):
            self.error(
                "MISSING_RESOURCE",
                f'{key} must be an ARN, "*", or a non-empty list of them.',
                (*path, key),
                "Policy statement must contain resources.",
            )
            return
        for j, resource in enumerate(_as_list(value)):
            if isinstance(resource, str) and _valid_resource(resource):
                continue
            rpath = (*path, key, j) if isinstance(value, list) else (*path, key)
            if not isinstance(resource, str):
                self.error("INVALID_ARN_RESOURCE", "A resource must be a string.", rpath)
                continue
            self.error(
                "INVALID_ARN_RESOURCE",
                f"{resource} is not a valid resource: use an ARN "
                '(arn:partition:service:region:account:resource) or "*".',
                rpath,
                f'Resource {resource} must be in ARN format or "*".',
            )
        if effect == "Allow" and key == "NotResource":
            self.note(
                "WARNING",
                "ALLOW_WITH_NOT_RESOURCE",
                "Allow with NotResource allows every resource not listed, including ones "
                "created later.",
                (*path, key),
            )

    def condition(self, cond: Any, path: Path) -> None:
        if not isinstance(cond, dict):
            self.error("INVALID_CONDITION", "Condition must be a JSON object.", path)
            return
        for op_name, block in cond.items():
            opath = (*path, op_name)
            op = parse_operator(op_name)
            if op is None:
                self.error(
                    "INVALID_CONDITION_OPERATOR",
                    f"{op_name} is not a condition operator.",
                    opath,
                    f"Invalid Condition type : {op_name}",
                    on_key=True,
                )
                continue
            if not isinstance(block, dict) or not block:
                self.error(
                    "INVALID_CONDITION",
                    f"{op_name} must map condition keys to values.",
                    opath,
                )
                continue
            for key, values in block.items():
                kpath = (*opath, key)
                if ":" not in key or key.startswith(":"):
                    self.error(
                        "INVALID_CONDITION_KEY",
                        f"{key} is not a condition key: write service:key, e.g. aws:SourceIp.",
                        kpath,
                        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, "
                        "etc.",
                        on_key=True,
                    )
                if values == [] or not all(isinstance(v, _SCALAR) for v in _as_list(values)):
                    self.error(
                        "INVALID_CONDITION_VALUE",
                        f"The value of {key} must be a string, number, boolean or a list of them.",
                        kpath,
                    )
                    continue
                for j, v in enumerate(_as_list(values)):
                    vpath = (*kpath, j) if isinstance(values, list) else kpath
                    if isinstance(v, str) and "${" in v:
                        continue
                    problem = check_policy_value(op.family, v)
                    if problem is not None:
                        code = {
                            "numeric": "INVALID_NUMERIC_CONDITION_VALUE",
                            "date": "INVALID_DATE_CONDITION_VALUE",
                            "bool": "INVALID_BOOLEAN_CONDITION_VALUE",
                            "null": "INVALID_NULL_CONDITION_VALUE",
                            "binary": "INVALID_BINARY_CONDITION_VALUE",
                            "ip": "INVALID_IP_CONDITION_VALUE",
                            "arn": "INVALID_ARN_CONDITION_VALUE",
                        }[op.family]
                        self.error(
                            code,
                            f"{json.dumps(v)} cannot be compared with {op_name}: {problem}.",
                            vpath,
                            aws=None,
                        )


def _valid_resource(resource: str) -> bool:
    if resource == "*":
        return True
    if not resource.startswith("arn:"):
        return False
    return resource.count(":") >= 5 or resource.endswith("*")


# ---- building the model -----------------------------------------------------------------


def check_document(doc: Any, policy_type: PolicyType, *, notes: bool = True) -> list[Issue]:
    return _Checker(doc, policy_type, notes=notes).run()


def _strings(value: Any) -> tuple[str, ...]:
    if value.__class__ is str:
        return (value,)
    if value.__class__ is list and all(v.__class__ is str for v in value):
        return tuple(value)
    return tuple(str(v) for v in _as_list(value))


def _principal(value: Any) -> PrincipalSpec:
    if value == "*":
        return PrincipalSpec(any=True)
    aws = _strings(value.get("AWS", ()))
    return PrincipalSpec(
        any="*" in aws,
        aws=tuple(a for a in aws if a != "*"),
        federated=_strings(value.get("Federated", ())),
        service=_strings(value.get("Service", ())),
        canonical_user=_strings(value.get("CanonicalUser", ())),
    )


_Effect = Literal["Allow", "Deny"]
_ConditionValues = list[ConditionValue]


def _build(
    doc: dict[str, Any], policy_type: PolicyType, text: str, located: Located | None
) -> Policy:
    raw = doc["Statement"]
    items = [raw] if isinstance(raw, dict) else raw
    statements: list[Statement] = []
    spans = located.spans if located is not None else None
    for index, s in enumerate(items):
        action_key = "Action" if "Action" in s else "NotAction"
        if "Resource" in s:
            resource_key: str | None = "Resource"
        else:
            resource_key = "NotResource" if "NotResource" in s else None
        if "Principal" in s:
            principal_key: str | None = "Principal"
        else:
            principal_key = "NotPrincipal" if "NotPrincipal" in s else None
        conditions: list[ConditionClause] = []
        condition = s.get("Condition")
        if condition:
            for op_name, block in condition.items():
                for key, values in block.items():
                    conditions.append(
                        ConditionClause(
                            op_name, key, tuple(cast(_ConditionValues, _as_list(values)))
                        )
                    )
        span = None
        if spans is not None:
            span = spans.get(("Statement",) if raw is s else ("Statement", index))
        statements.append(
            build_frozen(
                Statement,
                index=index,
                sid=s.get("Sid") or None,
                effect=cast(_Effect, s["Effect"]),
                actions=_strings(s[action_key]),
                not_action=action_key == "NotAction",
                resources=_strings(s[resource_key]) if resource_key else None,
                not_resource=resource_key == "NotResource",
                principal=_principal(s[principal_key]) if principal_key else None,
                not_principal=principal_key == "NotPrincipal",
                conditions=tuple(conditions),
                span=span,
            )
        )
    return Policy(
        version=doc.get("Version"),
        id=doc.get("Id"),
        statements=tuple(statements),
        policy_type=policy_type,
        text=text,
        document=doc,
    )


_TOP_FIELD_SET = frozenset(TOP_FIELDS)
_IDENTITY_FIELD_SET = _STATEMENT_FIELD_SET - {"Principal", "NotPrincipal"}
_EFFECTS = ("Allow", "Deny")


def _fast_strings(value: Any) -> tuple[str, ...] | None:
    """A string, or a non-empty list of strings, as a tuple; None for anything else."""
    if value.__class__ is str:
        return (value,)
    if value.__class__ is list and value and all(v.__class__ is str for v in value):
        return tuple(value)
    return None


def _build_identity_fast(doc: Any, text: str) -> Policy | None:
    """Check and build an identity-based document in one pass, or None.

    It returns a Policy only when every element has a shape the checker accepts without
    any issue IAM rejects (``_Checker`` with ``notes=False`` would raise nothing), and that
    Policy is the one ``_build`` makes. On anything unusual, valid or not, it returns None
    and the caller takes the full checker, which finds and reports the problem exactly as
    before; being stricter than the checker only costs time, never correctness.
    ``tests/policies/engine/test_parse_and_validate.py`` holds the two paths to each other.
    Condition values are not looked at: a value an operator cannot use (a number that is
    not a number) is a validation finding, not a rejection (``aws=None`` in the checker).
    """
    if doc.__class__ is not dict or not _TOP_FIELD_SET.issuperset(doc):
        return None
    version = doc.get("Version")
    if "Version" in doc and version not in VERSIONS:
        return None
    doc_id = doc.get("Id")
    if "Id" in doc and doc_id.__class__ is not str:
        return None
    raw = doc.get("Statement")
    if raw.__class__ is dict:
        items = [raw]
    elif raw.__class__ is list and raw:
        items = raw
    else:
        return None
    statements: list[Statement] = []
    sids: set[str] = set()
    sid_re = _SID_RE.match
    action_re = _ACTION_RE.match
    for index, s in enumerate(items):
        if s.__class__ is not dict or not _IDENTITY_FIELD_SET.issuperset(s):
            return None
        sid = s.get("Sid")
        if sid is not None or "Sid" in s:
            if sid.__class__ is not str or not sid_re(sid):
                return None
            if sid:
                if sid in sids:
                    return None
                sids.add(sid)
        effect = s.get("Effect")
        if effect.__class__ is not str or effect not in _EFFECTS:
            return None
        if "Action" in s:
            if "NotAction" in s:
                return None
            actions = _fast_strings(s["Action"])
            not_action = False
        else:
            actions = _fast_strings(s.get("NotAction"))
            not_action = True
        if actions is None:
            return None
        for action in actions:
            if action != "*" and not action_re(action):
                return None
        if "Resource" in s:
            if "NotResource" in s:
                return None
            resources = _fast_strings(s["Resource"])
            not_resource = False
        else:
            resources = _fast_strings(s.get("NotResource"))
            not_resource = True
        if resources is None:
            return None
        for resource in resources:
            if resource != "*" and not _valid_resource(resource):
                return None
        conditions: list[ConditionClause] = []
        if "Condition" in s:
            condition = s["Condition"]
            if condition.__class__ is not dict:
                return None
            for op_name, block in condition.items():
                if parse_operator(op_name) is None or block.__class__ is not dict or not block:
                    return None
                for key, values in block.items():
                    if ":" not in key or key.startswith(":"):
                        return None
                    if values.__class__ is list:
                        if not values or not all(isinstance(v, _SCALAR) for v in values):
                            return None
                        clause_values = tuple(values)
                    elif isinstance(values, _SCALAR):
                        clause_values = (values,)
                    else:
                        return None
                    conditions.append(ConditionClause(op_name, key, clause_values))
        statements.append(
            build_frozen(
                Statement,
                index=index,
                sid=sid or None,
                effect=effect,
                actions=actions,
                not_action=not_action,
                resources=resources,
                not_resource=not_resource,
                principal=None,
                not_principal=False,
                conditions=tuple(conditions),
                span=None,
            )
        )
    return Policy(
        version=version,
        id=doc_id,
        statements=tuple(statements),
        policy_type=PolicyType.IDENTITY,
        text=text,
        document=doc,
    )


_INVALID_CHARS = re.compile(r"[^\t\n\r\x20-\xff]")


def invalid_characters(text: str) -> list[int]:
    """Offsets of characters IAM does not accept in a policy document (it allows TAB, LF,
    CR and U+0020-U+00FF)."""
    if text.isascii() and text.isprintable():
        return []  # compact JSON, the common case, checked in C
    return [m.start() for m in _INVALID_CHARS.finditer(text)]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder for every document: json.loads builds a new one per call when given options.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def load(
    document: str | Mapping[str, Any], *, positions: bool = True
) -> tuple[Any, str, Located | None]:
    """Decode ``document``: (value, text, positions); raises JsonSyntaxError/ValueError."""
    if isinstance(document, str):
        if not positions:
            # The C decoder is several times faster; NaN and Infinity are not JSON.
            if document.startswith("\ufeff"):
                raise ValueError("a byte order mark is not JSON")
            return _DECODER.decode(document), document, None
        located = parse_located(document)
        return located.value, document, located
    doc = json.loads(json.dumps(document))
    return doc, json.dumps(document, separators=(",", ":"), sort_keys=False), None


def parse_policy(
    document: str | Mapping[str, Any],
    *,
    policy_type: PolicyType = PolicyType.IDENTITY,
    positions: bool = False,
) -> Policy:
    """Parse a policy strictly: anything IAM rejects raises :class:`PolicyParseError`.

    With ``positions=True`` each statement's ``span`` (and a rejection's) is located in the
    text, at some cost; compiling for decisions does not need it."""
    try:
        doc, text, located = load(document, positions=positions)
    except JsonSyntaxError as exc:
        raise PolicyParseError(SYNTAX, (), (exc.line, exc.column, exc.line, exc.column)) from exc
    except (TypeError, ValueError) as exc:
        raise PolicyParseError(SYNTAX) from exc
    if isinstance(document, str) and invalid_characters(document):
        raise PolicyParseError(SYNTAX)
    if located is None and policy_type == PolicyType.IDENTITY:
        # One pass that checks and builds the common shapes; None sends the document
        # through the full checker below.
        policy = _build_identity_fast(doc, text)
        if policy is not None:
            return policy
    for issue in check_document(doc, policy_type, notes=False):
        if issue.aws_message is not None:
            span: Span | None = None
            if located is not None:
                span = (
                    located.key_spans.get(issue.path) if issue.on_key else None
                ) or located.span_of(issue.path)
            raise PolicyParseError(issue.aws_message, issue.path, span)
    return _build(doc, policy_type, text, located)
