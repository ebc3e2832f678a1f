"""The policy simulator: a principal's policies (or pasted ones) against actions and resources.

Like IAM's SimulatePrincipalPolicy / SimulateCustomPolicy: each action × resource gets the
engine's decision, the statements that decided it and the context keys a condition needed
but was not given.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse

from console.access import (
    access_group,
    access_role,
    access_user,
    authorize,
    console_action,
    render_page,
)
from console.forms import SimulatorForm
from policies import engine
from policies.models import GroupPolicyAttachment, InlinePolicy, PolicyVersion
from policies.selectors import (
    PolicySources,
    inline_policy_id,
    role_policy_sources,
    user_policy_sources,
)


def parse_context(text: str) -> dict[str, Any]:
    """``key=value`` lines; ``a,b`` gives a list; ``true``/``false`` booleans, digits numbers,
    ISO dates datetimes — the types the engine's operators compare."""
    context: dict[str, Any] = {}
    for raw in text.splitlines():
        if "=" not in raw:
            continue
        key, _, value = raw.partition("=")
        values = [_typed(v.strip()) for v in value.split(",")] if "," in value else None
        context[key.strip()] = values if values is not None else _typed(value.strip())
    return context


def _typed(value: str) -> Any:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if value.isdigit():
        return int(value)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value


def group_policy_sources(group: Any) -> PolicySources:
    identity = [
        engine.SourcedPolicy(policy_id=inline_policy_id(group.arn, p.name), document=p.document)
        for p in InlinePolicy.objects.filter(group=group).order_by("name")
    ]
    attached = GroupPolicyAttachment.objects.filter(group=group).values("policy_id")
    for version in PolicyVersion.objects.filter(
        is_default=True, policy_id__in=attached
    ).select_related("policy"):
        identity.append(
            engine.SourcedPolicy(policy_id=version.policy.arn, document=version.document)
        )
    return PolicySources(identity=identity, boundary=None, session=None)


@console_action("iam:SimulateCustomPolicy")
def simulator(request: HttpRequest) -> HttpResponse:
    account = request.user.account  # type: ignore[union-attr]
    form = SimulatorForm(request.GET if "actions" in request.GET else None)
    results: list[dict[str, Any]] = []
    error = ""
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        source = data["source"]
        principal = engine.Principal(
            arn=f"arn:aws:iam::{account.id}:user/simulated",
            account=account.id,
            kind="user",
            username="simulated",
        )
        if source == "user":
            user = access_user(request, data["principal_name"], "iam:SimulatePrincipalPolicy")
            sources = user_policy_sources(user)
            principal = engine.Principal(
                arn=user.arn,
                account=account.id,
                kind="user",
                user_id=user.unique_id,
                username=user.name,
                tags={t["Key"]: t["Value"] for t in user.tags},
            )
        elif source == "group":
            group = access_group(request, data["principal_name"], "iam:SimulatePrincipalPolicy")
            sources = group_policy_sources(group)
        elif source == "role":
            role = access_role(request, data["principal_name"], "iam:SimulatePrincipalPolicy")
            sources = role_policy_sources(role)
            principal = engine.Principal(
                arn=f"arn:aws:sts::{account.id}:assumed-role/{role.name}/simulated",
                account=account.id,
                kind="role_session",
                role_arn=role.arn,
                user_id=f"{role.unique_id}:simulated",
                tags={t["Key"]: t["Value"] for t in role.tags},
            )
        else:
            authorize(request, "iam:SimulateCustomPolicy", "*")
            texts = [t.strip() for t in data["policies"].split("\n---\n") if t.strip()]
            sources = PolicySources(
                identity=[
                    engine.SourcedPolicy(policy_id=f"Pasted policy {i + 1}", document=t)
                    for i, t in enumerate(texts)
                ],
                boundary=None,
                session=None,
            )
        try:
            policy_set = engine.compile_policy_set(
                identity=sources.identity, boundary=sources.boundary, session=sources.session
            )
        except engine.PolicyParseError as exc:
            error = f"MalformedPolicyDocument: {exc.message}"
        else:
            context = parse_context(data["context"])
            for action in data["actions"]:
                for resource in data["resources"] or ["*"]:
                    decision = engine.evaluate(
                        policy_set,
                        engine.Request(
                            principal=principal, action=action, resource=resource, context=context
                        ),
                    )
                    results.append({"action": action, "resource": resource, "decision": decision})
    else:
        authorize(request, "iam:SimulateCustomPolicy", "*")
    if form.is_bound and not form.is_valid():
        authorize(request, "iam:SimulateCustomPolicy", "*")
    return render_page(
        request,
        "console/simulator.html",
        {"form": form, "results": results, "error": error},
        status=400 if (form.is_bound and not form.is_valid()) or error else 200,
    )
