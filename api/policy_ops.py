"""Policy operations of the Query API: managed policies and versions, attachments, inline
policies, ListEntitiesForPolicy, the simulators and context-key readers."""

from __future__ import annotations

from typing import Any

from api.iam_ops import IAM, _named, paging
from api.registry import Call, operation, tag_context
from identity import selectors as identity_selectors
from identity.errors import InvalidInput
from identity.models import Account, Group, Role, User
from policies import engine
from policies import selectors as policy_selectors
from policies import services as policy_services
from policies.models import ManagedPolicy, PolicyVersion

# The three kinds of principal that hold policies: model, ARN kind, parameter name.
OWNERS = {"User": (User, "user"), "Group": (Group, "group"), "Role": (Role, "role")}


def policy_out(policy: ManagedPolicy, account: Account) -> dict[str, Any]:
    attachments, boundaries = identity_selectors.policy_usage_in_account(
        policy=policy, account=account
    )
    return {
        "PolicyName": policy.name,
        "PolicyId": policy.unique_id,
        "Arn": policy.arn,
        "Path": policy.path,
        "DefaultVersionId": policy.default_version_id,
        "AttachmentCount": attachments,
        "PermissionsBoundaryUsageCount": boundaries,
        "IsAttachable": True,
        "Description": policy.description or None,
        "CreateDate": policy.created_at,
        "UpdateDate": policy.updated_at,
        "Tags": policy.tags or None,
    }


def version_out(version: PolicyVersion, *, document: bool = True) -> dict[str, Any]:
    return {
        "Document": version.document if document else None,
        "VersionId": version.version_id,
        "IsDefaultVersion": version.is_default,
        "CreateDate": version.created_at,
    }


# --- managed policies -------------------------------------------------------------------------


@operation(IAM, "CreatePolicy", write=True)
def create_policy(call: Call) -> dict[str, Any]:
    p = call.params
    path = p.get("Path", "/")
    call.authorize(call.arn(f"policy{path}{p['PolicyName']}"), context=tag_context(p.get("Tags")))
    policy = policy_services.create_policy(
        account=call.account,
        policy_name=p["PolicyName"],
        policy_document=p["PolicyDocument"],
        path=path,
        description=p.get("Description", ""),
        tags=p.get("Tags") or (),
        actor=call.actor,
    )
    out = policy_out(policy, call.account)
    out.pop("Description")
    return {"Policy": out}


@operation(IAM, "GetPolicy", write=False)
def get_policy(call: Call) -> dict[str, Any]:
    call.authorize(call.params["PolicyArn"])
    policy = policy_selectors.get_policy(account=call.account, policy_arn=call.params["PolicyArn"])
    return {"Policy": policy_out(policy, call.account)}


@operation(IAM, "DeletePolicy", write=True)
def delete_policy(call: Call) -> dict[str, Any]:
    call.authorize(call.params["PolicyArn"])
    policy_services.delete_policy(
        account=call.account, policy_arn=call.params["PolicyArn"], actor=call.actor
    )
    return {}


@operation(IAM, "ListPolicies", write=False)
def list_policies(call: Call) -> dict[str, Any]:
    p = call.params
    call.authorize(call.arn(f"policy{p.get('PathPrefix', '/')}"))
    page = policy_selectors.list_policies(
        account=call.account,
        scope=p.get("Scope", "All"),
        only_attached=p.get("OnlyAttached", False),
        path_prefix=p.get("PathPrefix", "/"),
        policy_usage_filter=p.get("PolicyUsageFilter"),
        **paging(call),
    )
    return {
        "Policies": [policy_out(x, call.account) for x in page.items],
        "IsTruncated": page.is_truncated,
        "Marker": page.marker,
    }


@operation(IAM, "CreatePolicyVersion", write=True)
def create_policy_version(call: Call) -> dict[str, Any]:
    call.authorize(call.params["PolicyArn"])
    version = policy_services.create_policy_version(
        account=call.account,
        policy_arn=call.params["PolicyArn"],
        policy_document=call.params["PolicyDocument"],
        set_as_default=call.params.get("SetAsDefault", False),
        actor=call.actor,
    )
    return {"PolicyVersion": version_out(version, document=False)}


@operation(IAM, "GetPolicyVersion", write=False)
def get_policy_version(call: Call) -> dict[str, Any]:
    call.authorize(call.params["PolicyArn"])
    version = policy_selectors.get_policy_version(
        account=call.account,
        policy_arn=call.params["PolicyArn"],
        version_id=call.params["VersionId"],
    )
    return {"PolicyVersion": version_out(version)}


@operation(IAM, "ListPolicyVersions", write=False)
def list_policy_versions(call: Call) -> dict[str, Any]:
    call.authorize(call.params["PolicyArn"])
    page = policy_selectors.list_policy_versions(
        account=call.account, policy_arn=call.params["PolicyArn"], **paging(call)
    )
    return {
        "Versions": [version_out(v, document=False) for v in page.items],
        "IsTruncated": page.is_truncated,
        "Marker": page.marker,
    }


@operation(IAM, "DeletePolicyVersion", write=True)
def delete_policy_version(call: Call) -> dict[str, Any]:
    call.authorize(call.params["PolicyArn"])
    policy_services.delete_policy_version(
        account=call.account,
        policy_arn=call.params["PolicyArn"],
        version_id=call.params["VersionId"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "SetDefaultPolicyVersion", write=True)
def set_default_policy_version(call: Call) -> dict[str, Any]:
    call.authorize(call.params["PolicyArn"])
    policy_services.set_default_policy_version(
        account=call.account,
        policy_arn=call.params["PolicyArn"],
        version_id=call.params["VersionId"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "TagPolicy", write=True)
def tag_policy(call: Call) -> dict[str, Any]:
    call.authorize(call.params["PolicyArn"], context=tag_context(call.params["Tags"]))
    policy_services.tag_policy(
        account=call.account,
        policy_arn=call.params["PolicyArn"],
        tags=call.params["Tags"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "UntagPolicy", write=True)
def untag_policy(call: Call) -> dict[str, Any]:
    call.authorize(call.params["PolicyArn"], context={"aws:TagKeys": call.params["TagKeys"]})
    policy_services.untag_policy(
        account=call.account,
        policy_arn=call.params["PolicyArn"],
        tag_keys=call.params["TagKeys"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "ListPolicyTags", write=False)
def list_policy_tags(call: Call) -> dict[str, Any]:
    call.authorize(call.params["PolicyArn"])
    policy = policy_selectors.get_policy(account=call.account, policy_arn=call.params["PolicyArn"])
    page = identity_selectors.list_tags(policy, **paging(call))
    return {"Tags": page.items, "IsTruncated": page.is_truncated, "Marker": page.marker}


@operation(IAM, "ListEntitiesForPolicy", write=False)
def list_entities_for_policy(call: Call) -> dict[str, Any]:
    p = call.params
    call.authorize(p["PolicyArn"])
    entities = policy_selectors.list_entities_for_policy(
        account=call.account,
        policy_arn=p["PolicyArn"],
        entity_filter=p.get("EntityFilter"),
        path_prefix=p.get("PathPrefix", "/"),
        policy_usage_filter=p.get("PolicyUsageFilter"),
        **paging(call),
    )
    return {
        "PolicyGroups": [{"GroupName": g.name, "GroupId": g.unique_id} for g in entities.groups],
        "PolicyUsers": [{"UserName": u.name, "UserId": u.unique_id} for u in entities.users],
        "PolicyRoles": [{"RoleName": r.name, "RoleId": r.unique_id} for r in entities.roles],
        "IsTruncated": entities.is_truncated,
        "Marker": entities.marker,
    }


# --- attachments and inline policies, for users, groups and roles -------------------------------


def _register_owner_operations(kind: str) -> None:
    model, arn_kind = OWNERS[kind]
    name_param = f"{kind}Name"
    lower = kind.lower()

    def target(call: Call) -> tuple[str, dict[str, Any]]:
        _, arn, ctx = _named(call, model, arn_kind, call.params[name_param])
        return arn, ctx

    def attach(call: Call) -> dict[str, Any]:
        arn, ctx = target(call)
        call.authorize(arn, context={**ctx, "iam:PolicyARN": call.params["PolicyArn"]})
        getattr(policy_services, f"attach_{lower}_policy")(
            account=call.account,
            policy_arn=call.params["PolicyArn"],
            actor=call.actor,
            **{f"{lower}_name": call.params[name_param]},
        )
        return {}

    def detach(call: Call) -> dict[str, Any]:
        arn, ctx = target(call)
        call.authorize(arn, context={**ctx, "iam:PolicyARN": call.params["PolicyArn"]})
        getattr(policy_services, f"detach_{lower}_policy")(
            account=call.account,
            policy_arn=call.params["PolicyArn"],
            actor=call.actor,
            **{f"{lower}_name": call.params[name_param]},
        )
        return {}

    def list_attached(call: Call) -> dict[str, Any]:
        arn, ctx = target(call)
        call.authorize(arn, context=ctx)
        page = getattr(policy_selectors, f"list_attached_{lower}_policies")(
            account=call.account,
            path_prefix=call.params.get("PathPrefix", "/"),
            **{f"{lower}_name": call.params[name_param]},
            **paging(call),
        )
        return {
            "AttachedPolicies": [{"PolicyName": x.name, "PolicyArn": x.arn} for x in page.items],
            "IsTruncated": page.is_truncated,
            "Marker": page.marker,
        }

    def put_inline(call: Call) -> dict[str, Any]:
        arn, ctx = target(call)
        call.authorize(arn, context=ctx)
        getattr(policy_services, f"put_{lower}_policy")(
            account=call.account,
            policy_name=call.params["PolicyName"],
            policy_document=call.params["PolicyDocument"],
            actor=call.actor,
            **{f"{lower}_name": call.params[name_param]},
        )
        return {}

    def get_inline(call: Call) -> dict[str, Any]:
        arn, ctx = target(call)
        call.authorize(arn, context=ctx)
        inline = getattr(policy_selectors, f"get_{lower}_policy")(
            account=call.account,
            policy_name=call.params["PolicyName"],
            **{f"{lower}_name": call.params[name_param]},
        )
        owner = getattr(inline, lower)
        return {
            name_param: owner.name,
            "PolicyName": inline.name,
            "PolicyDocument": inline.document,
        }

    def delete_inline(call: Call) -> dict[str, Any]:
        arn, ctx = target(call)
        call.authorize(arn, context=ctx)
        getattr(policy_services, f"delete_{lower}_policy")(
            account=call.account,
            policy_name=call.params["PolicyName"],
            actor=call.actor,
            **{f"{lower}_name": call.params[name_param]},
        )
        return {}

    def list_inline(call: Call) -> dict[str, Any]:
        arn, ctx = target(call)
        call.authorize(arn, context=ctx)
        page = getattr(policy_selectors, f"list_{lower}_policies")(
            account=call.account, **{f"{lower}_name": call.params[name_param]}, **paging(call)
        )
        return {"PolicyNames": page.items, "IsTruncated": page.is_truncated, "Marker": page.marker}

    operation(IAM, f"Attach{kind}Policy", write=True)(attach)
    operation(IAM, f"Detach{kind}Policy", write=True)(detach)
    operation(IAM, f"ListAttached{kind}Policies", write=False)(list_attached)
    operation(IAM, f"Put{kind}Policy", write=True)(put_inline)
    operation(IAM, f"Get{kind}Policy", write=False)(get_inline)
    operation(IAM, f"Delete{kind}Policy", write=True)(delete_inline)
    operation(IAM, f"List{kind}Policies", write=False)(list_inline)


for _kind in OWNERS:
    _register_owner_operations(_kind)


# --- context keys and simulation --------------------------------------------------------------


@operation(IAM, "GetContextKeysForCustomPolicy", write=False)
def get_context_keys_for_custom_policy(call: Call) -> dict[str, Any]:
    # No resource: the Service Authorization Reference lists this action on "*".
    call.authorize("*")
    policies = []
    for document in call.params["PolicyInputList"]:
        try:
            policies.append(engine.parse_policy(document))
        except engine.PolicyParseError as exc:
            raise InvalidInput(exc.message) from exc
    return {"ContextKeyNames": sorted(engine.context_keys_for_policies(policies))}


def _principal_policy_documents(call: Call, arn: str) -> tuple[list[str], list[str]]:
    """The identity and boundary documents of the user, group or role ``arn`` names."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[4] != call.account.id:
        raise InvalidInput(f"Invalid ARN {arn}.")
    kind, _, rest = parts[5].partition("/")
    name = rest.rsplit("/", 1)[-1]
    if kind == "user":
        user = identity_selectors.user_by_name(account=call.account, user_name=name)
        sources = policy_selectors.user_policy_sources(user)
    elif kind == "role":
        role = identity_selectors.role_by_name(account=call.account, role_name=name)
        sources = policy_selectors.role_policy_sources(role)
    elif kind == "group":
        group = identity_selectors.group_by_name(account=call.account, group_name=name)
        inline = [i.document for i in group.inline_policies.all()]
        managed = [
            policy_selectors.default_document(a.policy)
            for a in group.policy_attachments.select_related("policy")
        ]
        return inline + managed, []
    else:
        raise InvalidInput(f"Invalid ARN {arn}.")
    return (
        [str(s.document) for s in sources.identity],
        [str(s.document) for s in sources.boundary or []],
    )


@operation(IAM, "GetContextKeysForPrincipalPolicy", write=False)
def get_context_keys_for_principal_policy(call: Call) -> dict[str, Any]:
    arn = call.params["PolicySourceArn"]
    call.authorize(arn)
    identity, boundary = _principal_policy_documents(call, arn)
    documents = identity + boundary + list(call.params.get("PolicyInputList") or [])
    policies = []
    for document in documents:
        try:
            policies.append(engine.parse_policy(document))
        except engine.PolicyParseError as exc:
            raise InvalidInput(exc.message) from exc
    return {"ContextKeyNames": sorted(engine.context_keys_for_policies(policies))}


def _simulate(call: Call, request: dict[str, Any]) -> dict[str, Any]:
    try:
        result = engine.simulate_custom_policy(request)
    except engine.SimulationError as exc:
        raise InvalidInput(exc.message) from exc
    return result


@operation(IAM, "SimulateCustomPolicy", write=False)
def simulate_custom_policy(call: Call) -> dict[str, Any]:
    call.authorize("*")
    return _simulate(call, dict(call.params))


@operation(IAM, "SimulatePrincipalPolicy", write=False)
def simulate_principal_policy(call: Call) -> dict[str, Any]:
    arn = call.params["PolicySourceArn"]
    call.authorize(arn)
    request = {k: v for k, v in call.params.items() if k != "PolicySourceArn"}
    identity, boundary = _principal_policy_documents(call, arn)
    request["PolicyInputList"] = identity + list(call.params.get("PolicyInputList") or [])
    if boundary:
        request["PermissionsBoundaryPolicyInputList"] = boundary
    return _simulate(call, request)
