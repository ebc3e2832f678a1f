"""Policy summaries (like the IAM console's) and the context keys a policy uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .catalog import ACCESS_LEVELS, ACTIONS
from .model import Policy
from .patterns import Pattern


def context_keys_for_policies(policies: Sequence[Policy]) -> list[str]:
    """Every condition key the policies use, including those in policy variables, as
    GetContextKeysForCustomPolicy returns them (first spelling wins, case-insensitively)."""
    seen: dict[str, str] = {}
    for policy in policies:
        for stmt in policy.statements:
            for clause in stmt.conditions:
                seen.setdefault(clause.key.lower(), clause.key)
            if policy.variables_enabled:
                texts = list(stmt.resources or ())
                texts += [str(v) for c in stmt.conditions for v in c.values]
                for text in texts:
                    for key in _variable_keys(text):
                        seen.setdefault(key.lower(), key)
    return list(seen.values())


def _variable_keys(text: str) -> list[str]:
    from .patterns import _DEFAULT_RE, _ESCAPE_VARS, _VAR_RE

    keys = []
    for m in _VAR_RE.finditer(text):
        inner = m.group(1)
        if inner in _ESCAPE_VARS:
            continue
        dm = _DEFAULT_RE.match(inner)
        keys.append(dm.group(1) if dm else inner.strip())
    return [k for k in keys if k]


def _actions_of_service(service: str) -> list[str]:
    return [a for a in ACTIONS if a.split(":", 1)[0] == service]


def summarize_policy(policy: Policy) -> dict[str, Any]:
    """Services -> allowed/denied actions by access level, with their resources and
    conditions, like the console's policy summary.

    Shape: ``{"services": {service: {"Allow": {level: {"actions": [...], "resources":
    [...], "conditions": bool}}, "Deny": {...}, "access": "Full access" | "Limited: Read,
    List" | ...}}, "uncatalogued": [action patterns of services we do not catalogue]}``.
    """
    services: dict[str, dict[str, Any]] = {}
    uncatalogued: list[str] = []
    for stmt in policy.statements:
        patterns = [Pattern(a, arn=False, ignore_case=True) for a in stmt.actions]
        resources = list(stmt.resources or ["*"])
        if stmt.not_resource:
            resources = [f"NotResource: {r}" for r in resources]
        matched: list[str] = []
        for name in ACTIONS:
            hit = any(p.match(name.lower(), None) for p in patterns)
            if hit != stmt.not_action:
                matched.append(name)
        for raw in stmt.actions:
            service = raw.split(":", 1)[0].lower()
            if raw != "*" and "*" not in service and not _actions_of_service(service):
                uncatalogued.append(raw)
        for name in matched:
            service = name.split(":", 1)[0]
            entry = services.setdefault(service, {"Allow": {}, "Deny": {}})
            level = ACTIONS[name]
            bucket = entry[stmt.effect].setdefault(
                level, {"actions": [], "resources": [], "conditions": False}
            )
            action = name.split(":", 1)[1]
            if action not in bucket["actions"]:
                bucket["actions"].append(action)
            for r in resources:
                if r not in bucket["resources"]:
                    bucket["resources"].append(r)
            bucket["conditions"] = bucket["conditions"] or bool(stmt.conditions)
    for service, entry in services.items():
        total = len(_actions_of_service(service))
        allowed = {a for b in entry["Allow"].values() for a in b["actions"]}
        denied = {a for b in entry["Deny"].values() for a in b["actions"]}
        effective = allowed - denied
        if total and len(effective) == total:
            entry["access"] = "Full access"
        elif effective:
            levels = [lv for lv in ACCESS_LEVELS if lv in entry["Allow"]]
            entry["access"] = "Limited: " + ", ".join(levels)
        else:
            entry["access"] = "None"
        for effect in ("Allow", "Deny"):
            for bucket in entry[effect].values():
                bucket["actions"].sort()
    return {"services": services, "uncatalogued": sorted(set(uncatalogued))}
