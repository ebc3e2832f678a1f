"""Access-Analyzer-style validation of a policy document, with positions.

https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-reference-policy-checks.html
Findings are ERROR (IAM would reject the document, or it cannot work as written),
SECURITY_WARNING, WARNING and SUGGESTION, each with a JSON path and a line/column span in
the submitted text.
"""

from __future__ import annotations

from collections.abc import Mapping

from .jsonpos import JsonSyntaxError, Located, parse_located
from .model import Finding, PolicyType, Span
from .parser import Issue, check_document, invalid_characters
from .patterns import Pattern

_ORDER = {"ERROR": 0, "SECURITY_WARNING": 1, "WARNING": 2, "SUGGESTION": 3}


def _loc(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _span(located: Located, issue: Issue) -> Span | None:
    if issue.on_key:
        span = located.key_spans.get(issue.path)
        if span is not None:
            return span
    return located.span_of(issue.path)


def validate(
    document_text: str,
    policy_type: PolicyType = PolicyType.IDENTITY,
    *,
    max_size: int | None = None,
    known_actions: Mapping[str, set[str]] | None = None,
) -> list[Finding]:
    """Check ``document_text`` and return every finding, most severe first."""
    findings: list[Finding] = []
    for offset in invalid_characters(document_text)[:10]:
        line, col = _loc(document_text, offset)
        findings.append(
            Finding(
                "ERROR",
                "INVALID_CHARACTERS",
                f"Character U+{ord(document_text[offset]):04X} is not allowed in a policy: "
                "only tab, line feed, carriage return and U+0020 to U+00FF are.",
                (),
                (line, col, line, col),
            )
        )
    if max_size is not None:
        size = sum(1 for ch in document_text if not ch.isspace())
        if size > max_size:
            findings.append(
                Finding(
                    "ERROR",
                    "POLICY_SIZE_EXCEEDS_QUOTA",
                    f"The policy has {size} characters not counting whitespace; the "
                    f"quota is {max_size}.",
                    (),
                    None,
                )
            )
    try:
        located = parse_located(document_text)
    except JsonSyntaxError as exc:
        findings.append(
            Finding(
                "ERROR",
                "JSON_SYNTAX_ERROR",
                f"The policy is not valid JSON: {exc.message} at line {exc.line}, "
                f"column {exc.column}.",
                (),
                (exc.line, exc.column, exc.line, exc.column),
            )
        )
        return findings
    for path in located.duplicate_keys:
        findings.append(
            Finding(
                "ERROR",
                "DUPLICATE_KEY",
                f"The element {path[-1]} appears more than once in the same object; only the "
                "last one would count.",
                path,
                located.key_spans.get(path),
            )
        )
    for issue in check_document(located.value, policy_type):
        findings.append(
            Finding(
                issue.finding_type,
                issue.issue_code,
                issue.message,
                issue.path,
                _span(located, issue),
            )
        )
    if known_actions is not None:
        findings.extend(_unknown_actions(located, known_actions))
    findings.sort(key=lambda f: _ORDER[f.finding_type])
    return findings


def _unknown_actions(located: Located, known: Mapping[str, set[str]]) -> list[Finding]:
    lowered = {svc.lower(): {a.lower() for a in actions} for svc, actions in known.items()}
    out: list[Finding] = []
    for path, span in located.spans.items():
        if len(path) < 3 or path[0] != "Statement":
            continue
        key = next((p for p in path[1:] if p in ("Action", "NotAction")), None)
        if key is None or (path[-1] != key and not isinstance(path[-1], int)):
            continue
        value = _get(located.value, path)
        if not isinstance(value, str) or value == "*" or ":" not in value:
            continue
        service, _, name = value.partition(":")
        service_l = service.lower()
        if "*" in service or "?" in service:
            continue
        if service_l not in lowered:
            out.append(
                Finding(
                    "ERROR",
                    "UNKNOWN_SERVICE",
                    f"The service {service} in {value} is not known.",
                    path,
                    span,
                )
            )
            continue
        pattern = Pattern(name.lower(), arn=False, ignore_case=True)
        if not any(pattern.match(a, None) for a in lowered[service_l]):
            out.append(
                Finding(
                    "ERROR",
                    "UNKNOWN_ACTION",
                    f"{value} matches no action of the {service} service.",
                    path,
                    span,
                )
            )
    return out


def _get(doc: object, path: tuple[str | int, ...]) -> object:
    cur = doc
    for p in path:
        if isinstance(cur, dict) and isinstance(p, str):
            cur = cur.get(p)
        elif isinstance(cur, list) and isinstance(p, int) and p < len(cur):
            cur = cur[p]
        else:
            return None
    return cur
