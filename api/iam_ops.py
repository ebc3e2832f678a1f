"""IAM operations of the Query API: authorize, call one service or selector, shape the result.

Resource ARNs follow the Service Authorization Reference for IAM ("Actions, resources, and
condition keys for AWS Identity and Access Management"); list actions are authorized on the
path they list (``arn:aws:iam::<acct>:user/`` for ``ListUsers``), which is what AWS's
``AccessDenied`` messages name.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Value
from django.db.models.functions import Lower

from api.registry import Call, operation, resource_tag_context, tag_context
from identity import selectors, services
from identity.errors import NoSuchEntity, ValidationError
from identity.models import AccessKey, Group, InstanceProfile, Role, User

IAM = "iam"


# --- shapes -----------------------------------------------------------------------------------


def boundary_out(entity: User | Role) -> dict[str, str] | None:
    if entity.permissions_boundary_id is None:
        return None
    return {
        "PermissionsBoundaryType": "Policy",
        "PermissionsBoundaryArn": entity.permissions_boundary.arn,  # type: ignore[union-attr]
    }


def user_out(user: User, *, tags: bool = True) -> dict[str, Any]:
    return {
        "Path": user.path,
        "UserName": user.name,
        "UserId": user.unique_id,
        "Arn": user.arn,
        "CreateDate": user.created_at,
        "PasswordLastUsed": user.password_last_used,
        "PermissionsBoundary": boundary_out(user),
        "Tags": (user.tags or None) if tags else None,
    }


def group_out(group: Group) -> dict[str, Any]:
    return {
        "Path": group.path,
        "GroupName": group.name,
        "GroupId": group.unique_id,
        "Arn": group.arn,
        "CreateDate": group.created_at,
    }


def role_out(role: Role, *, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Path": role.path,
        "RoleName": role.name,
        "RoleId": role.unique_id,
        "Arn": role.arn,
        "CreateDate": role.created_at,
        "AssumeRolePolicyDocument": role.assume_role_policy_document,
        "Description": role.description or None,
        "MaxSessionDuration": role.max_session_duration,
    }
    if detail:
        out["PermissionsBoundary"] = boundary_out(role)
        out["Tags"] = role.tags or None
        out["RoleLastUsed"] = (
            {"LastUsedDate": role.last_used_at, "Region": role.last_used_region}
            if role.last_used_at
            else {}
        )
    return out


def instance_profile_out(profile: InstanceProfile) -> dict[str, Any]:
    return {
        "Path": profile.path,
        "InstanceProfileName": profile.name,
        "InstanceProfileId": profile.unique_id,
        "Arn": profile.arn,
        "CreateDate": profile.created_at,
        "Roles": [role_out(profile.role, detail=False)] if profile.role_id else [],
        "Tags": profile.tags or None,
    }


def key_out(key: AccessKey) -> dict[str, Any]:
    return {
        "UserName": key.user.name,
        "AccessKeyId": key.access_key_id,
        "Status": key.status,
        "CreateDate": key.created_at,
    }


def page_out(page: selectors.Page[Any], name: str, items: list[Any]) -> dict[str, Any]:
    return {name: items, "IsTruncated": page.is_truncated, "Marker": page.marker}


def paging(call: Call) -> dict[str, Any]:
    return {
        "marker": call.params.get("Marker"),
        "max_items": call.params.get("MaxItems", selectors.DEFAULT_MAX_ITEMS),
    }


# --- finding the resource to authorize on -------------------------------------------------------


def _named(call: Call, model: type[Any], kind: str, name: str) -> tuple[Any, str, dict[str, Any]]:
    """The entity (or None) and its ARN for authorization: the stored path when it exists,
    ``/`` otherwise (the caller learns nothing more than AWS would tell them)."""
    # lower(name) = lower(%s), not Django's iexact (UPPER): the per-account unique indexes are on
    # lower(name), so this is an index lookup however many entities the account has.
    entity = (
        model.objects.filter(account=call.account, **({"is_root": False} if model is User else {}))
        .alias(_lower_name=Lower("name"))
        .filter(_lower_name=Lower(Value(name)))
        .first()
    )
    if entity is None:
        return None, call.arn(f"{kind}/{name}"), {}
    return entity, entity.arn, resource_tag_context(getattr(entity, "tags", None))


def _caller_user_name(call: Call) -> str | None:
    """Operations whose ``UserName`` defaults to the caller's own user (IAM API Reference,
    e.g. GetUser, CreateAccessKey, ListAccessKeys)."""
    return call.actor.user.name if call.actor.user is not None else None


def _user_target(call: Call) -> tuple[User | None, str, dict[str, Any], str | None]:
    name = call.params.get("UserName")
    if name is None:
        user = call.actor.user
        if user is None:
            raise ValidationError("Must specify userName when calling with non-User credentials")
        return user, user.arn, resource_tag_context(user.tags), None if user.is_root else user.name
    entity, arn, ctx = _named(call, User, "user", name)
    return entity, arn, ctx, name


# --- users ------------------------------------------------------------------------------------


@operation(IAM, "GetUser", write=False)
def get_user(call: Call) -> dict[str, Any]:
    user, arn, ctx, name = _user_target(call)
    call.authorize(arn, context=ctx)
    if user is None:
        raise NoSuchEntity(f"The user with name {name} cannot be found.")
    return {"User": user_out(user)}


@operation(IAM, "CreateUser", write=True)
def create_user(call: Call) -> dict[str, Any]:
    p = call.params
    path = p.get("Path", "/")
    context = tag_context(p.get("Tags"))
    if p.get("PermissionsBoundary"):
        context["iam:PermissionsBoundary"] = p["PermissionsBoundary"]
    call.authorize(call.arn(f"user{path}{p['UserName']}"), context=context)
    if p.get("Tags"):
        call.authorize(
            call.arn(f"user{path}{p['UserName']}"), action="iam:TagUser", context=context
        )
    user = services.create_user(
        account=call.account,
        user_name=p["UserName"],
        path=path,
        tags=p.get("Tags") or (),
        permissions_boundary=p.get("PermissionsBoundary"),
        actor=call.actor,
    )
    return {"User": user_out(user)}


@operation(IAM, "DeleteUser", write=True)
def delete_user(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, User, "user", call.params["UserName"])
    call.authorize(arn, context=ctx)
    services.delete_user(account=call.account, user_name=call.params["UserName"], actor=call.actor)
    return {}


@operation(IAM, "ListUsers", write=False)
def list_users(call: Call) -> dict[str, Any]:
    prefix = call.params.get("PathPrefix", "/")
    call.authorize(call.arn(f"user{prefix}"))
    page = selectors.list_users(account=call.account, path_prefix=prefix, **paging(call))
    return page_out(page, "Users", [user_out(u, tags=False) for u in page.items])


@operation(IAM, "UpdateUser", write=True)
def update_user(call: Call) -> dict[str, Any]:
    p = call.params
    _, arn, ctx = _named(call, User, "user", p["UserName"])
    call.authorize(arn, context=ctx)
    if p.get("NewUserName") or p.get("NewPath"):
        # Renaming or moving needs the permission on the new ARN too (IAM User Guide,
        # "Renaming an IAM user").
        new_path = p.get("NewPath") or (arn.split(":user", 1)[1].rsplit("/", 1)[0] + "/")
        call.authorize(call.arn(f"user{new_path}{p.get('NewUserName') or p['UserName']}"))
    services.update_user(
        account=call.account,
        user_name=p["UserName"],
        new_user_name=p.get("NewUserName"),
        new_path=p.get("NewPath"),
        actor=call.actor,
    )
    return {}


@operation(IAM, "TagUser", write=True)
def tag_user(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, User, "user", call.params["UserName"])
    call.authorize(arn, context={**ctx, **tag_context(call.params["Tags"])})
    services.tag_user(
        account=call.account,
        user_name=call.params["UserName"],
        tags=call.params["Tags"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "UntagUser", write=True)
def untag_user(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, User, "user", call.params["UserName"])
    call.authorize(arn, context={**ctx, "aws:TagKeys": call.params["TagKeys"]})
    services.untag_user(
        account=call.account,
        user_name=call.params["UserName"],
        tag_keys=call.params["TagKeys"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "ListUserTags", write=False)
def list_user_tags(call: Call) -> dict[str, Any]:
    user, arn, ctx = _named(call, User, "user", call.params["UserName"])
    call.authorize(arn, context=ctx)
    if user is None:
        raise NoSuchEntity(f"The user with name {call.params['UserName']} cannot be found.")
    page = selectors.list_tags(user, **paging(call))
    return page_out(page, "Tags", page.items)


@operation(IAM, "PutUserPermissionsBoundary", write=True)
def put_user_permissions_boundary(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, User, "user", call.params["UserName"])
    boundary = call.params["PermissionsBoundary"]
    call.authorize(arn, context={**ctx, "iam:PermissionsBoundary": boundary})
    services.put_user_permissions_boundary(
        account=call.account,
        user_name=call.params["UserName"],
        permissions_boundary=boundary,
        actor=call.actor,
    )
    return {}


@operation(IAM, "DeleteUserPermissionsBoundary", write=True)
def delete_user_permissions_boundary(call: Call) -> dict[str, Any]:
    user, arn, ctx = _named(call, User, "user", call.params["UserName"])
    if user is not None and user.permissions_boundary_id:
        ctx["iam:PermissionsBoundary"] = user.permissions_boundary.arn
    call.authorize(arn, context=ctx)
    services.delete_user_permissions_boundary(
        account=call.account, user_name=call.params["UserName"], actor=call.actor
    )
    return {}


# --- groups -----------------------------------------------------------------------------------


@operation(IAM, "CreateGroup", write=True)
def create_group(call: Call) -> dict[str, Any]:
    path = call.params.get("Path", "/")
    call.authorize(call.arn(f"group{path}{call.params['GroupName']}"))
    group = services.create_group(
        account=call.account, group_name=call.params["GroupName"], path=path, actor=call.actor
    )
    return {"Group": group_out(group)}


@operation(IAM, "GetGroup", write=False)
def get_group(call: Call) -> dict[str, Any]:
    _, arn, _ctx = _named(call, Group, "group", call.params["GroupName"])
    call.authorize(arn)
    group, page = selectors.get_group(
        account=call.account, group_name=call.params["GroupName"], **paging(call)
    )
    return {
        "Group": group_out(group),
        "Users": [user_out(u, tags=False) for u in page.items],
        "IsTruncated": page.is_truncated,
        "Marker": page.marker,
    }


@operation(IAM, "ListGroups", write=False)
def list_groups(call: Call) -> dict[str, Any]:
    prefix = call.params.get("PathPrefix", "/")
    call.authorize(call.arn(f"group{prefix}"))
    page = selectors.list_groups(account=call.account, path_prefix=prefix, **paging(call))
    return page_out(page, "Groups", [group_out(g) for g in page.items])


@operation(IAM, "ListGroupsForUser", write=False)
def list_groups_for_user(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, User, "user", call.params["UserName"])
    call.authorize(arn, context=ctx)
    page = selectors.list_groups_for_user(
        account=call.account, user_name=call.params["UserName"], **paging(call)
    )
    return page_out(page, "Groups", [group_out(g) for g in page.items])


@operation(IAM, "UpdateGroup", write=True)
def update_group(call: Call) -> dict[str, Any]:
    p = call.params
    _, arn, _ctx = _named(call, Group, "group", p["GroupName"])
    call.authorize(arn)
    if p.get("NewGroupName") or p.get("NewPath"):
        new_path = p.get("NewPath") or (arn.split(":group", 1)[1].rsplit("/", 1)[0] + "/")
        call.authorize(call.arn(f"group{new_path}{p.get('NewGroupName') or p['GroupName']}"))
    services.update_group(
        account=call.account,
        group_name=p["GroupName"],
        new_group_name=p.get("NewGroupName"),
        new_path=p.get("NewPath"),
        actor=call.actor,
    )
    return {}


@operation(IAM, "DeleteGroup", write=True)
def delete_group(call: Call) -> dict[str, Any]:
    _, arn, _ctx = _named(call, Group, "group", call.params["GroupName"])
    call.authorize(arn)
    services.delete_group(
        account=call.account, group_name=call.params["GroupName"], actor=call.actor
    )
    return {}


@operation(IAM, "AddUserToGroup", write=True)
def add_user_to_group(call: Call) -> dict[str, Any]:
    # The Service Authorization Reference lists AddUserToGroup on the group resource.
    _, arn, _ctx = _named(call, Group, "group", call.params["GroupName"])
    call.authorize(arn)
    services.add_user_to_group(
        account=call.account,
        group_name=call.params["GroupName"],
        user_name=call.params["UserName"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "RemoveUserFromGroup", write=True)
def remove_user_from_group(call: Call) -> dict[str, Any]:
    _, arn, _ctx = _named(call, Group, "group", call.params["GroupName"])
    call.authorize(arn)
    services.remove_user_from_group(
        account=call.account,
        group_name=call.params["GroupName"],
        user_name=call.params["UserName"],
        actor=call.actor,
    )
    return {}


# --- roles ------------------------------------------------------------------------------------


@operation(IAM, "CreateRole", write=True)
def create_role(call: Call) -> dict[str, Any]:
    p = call.params
    path = p.get("Path", "/")
    arn = call.arn(f"role{path}{p['RoleName']}")
    context = tag_context(p.get("Tags"))
    if p.get("PermissionsBoundary"):
        context["iam:PermissionsBoundary"] = p["PermissionsBoundary"]
    call.authorize(arn, context=context)
    if p.get("Tags"):
        call.authorize(arn, action="iam:TagRole", context=context)
    role = services.create_role(
        account=call.account,
        role_name=p["RoleName"],
        assume_role_policy_document=p["AssumeRolePolicyDocument"],
        path=path,
        description=p.get("Description", ""),
        max_session_duration=p.get("MaxSessionDuration", 3600),
        permissions_boundary=p.get("PermissionsBoundary"),
        tags=p.get("Tags") or (),
        actor=call.actor,
    )
    return {"Role": role_out(role)}


@operation(IAM, "GetRole", write=False)
def get_role(call: Call) -> dict[str, Any]:
    role, arn, ctx = _named(call, Role, "role", call.params["RoleName"])
    call.authorize(arn, context=ctx)
    if role is None:
        raise NoSuchEntity(f"The role with name {call.params['RoleName']} cannot be found.")
    return {"Role": role_out(role)}


@operation(IAM, "ListRoles", write=False)
def list_roles(call: Call) -> dict[str, Any]:
    prefix = call.params.get("PathPrefix", "/")
    call.authorize(call.arn(f"role{prefix}"))
    page = selectors.list_roles(account=call.account, path_prefix=prefix, **paging(call))
    return page_out(page, "Roles", [role_out(r) for r in page.items])


@operation(IAM, "UpdateRole", write=True)
def update_role(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, Role, "role", call.params["RoleName"])
    call.authorize(arn, context=ctx)
    services.update_role(
        account=call.account,
        role_name=call.params["RoleName"],
        description=call.params.get("Description"),
        max_session_duration=call.params.get("MaxSessionDuration"),
        actor=call.actor,
    )
    return {}


@operation(IAM, "UpdateRoleDescription", write=True)
def update_role_description(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, Role, "role", call.params["RoleName"])
    call.authorize(arn, context=ctx)
    role = services.update_role_description(
        account=call.account,
        role_name=call.params["RoleName"],
        description=call.params["Description"],
        actor=call.actor,
    )
    return {"Role": role_out(role)}


@operation(IAM, "UpdateAssumeRolePolicy", write=True)
def update_assume_role_policy(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, Role, "role", call.params["RoleName"])
    call.authorize(arn, context=ctx)
    services.update_assume_role_policy(
        account=call.account,
        role_name=call.params["RoleName"],
        policy_document=call.params["PolicyDocument"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "DeleteRole", write=True)
def delete_role(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, Role, "role", call.params["RoleName"])
    call.authorize(arn, context=ctx)
    services.delete_role(account=call.account, role_name=call.params["RoleName"], actor=call.actor)
    return {}


@operation(IAM, "TagRole", write=True)
def tag_role(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, Role, "role", call.params["RoleName"])
    call.authorize(arn, context={**ctx, **tag_context(call.params["Tags"])})
    services.tag_role(
        account=call.account,
        role_name=call.params["RoleName"],
        tags=call.params["Tags"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "UntagRole", write=True)
def untag_role(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, Role, "role", call.params["RoleName"])
    call.authorize(arn, context={**ctx, "aws:TagKeys": call.params["TagKeys"]})
    services.untag_role(
        account=call.account,
        role_name=call.params["RoleName"],
        tag_keys=call.params["TagKeys"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "ListRoleTags", write=False)
def list_role_tags(call: Call) -> dict[str, Any]:
    role, arn, ctx = _named(call, Role, "role", call.params["RoleName"])
    call.authorize(arn, context=ctx)
    if role is None:
        raise NoSuchEntity(f"The role with name {call.params['RoleName']} cannot be found.")
    page = selectors.list_tags(role, **paging(call))
    return page_out(page, "Tags", page.items)


@operation(IAM, "PutRolePermissionsBoundary", write=True)
def put_role_permissions_boundary(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, Role, "role", call.params["RoleName"])
    boundary = call.params["PermissionsBoundary"]
    call.authorize(arn, context={**ctx, "iam:PermissionsBoundary": boundary})
    services.put_role_permissions_boundary(
        account=call.account,
        role_name=call.params["RoleName"],
        permissions_boundary=boundary,
        actor=call.actor,
    )
    return {}


@operation(IAM, "DeleteRolePermissionsBoundary", write=True)
def delete_role_permissions_boundary(call: Call) -> dict[str, Any]:
    role, arn, ctx = _named(call, Role, "role", call.params["RoleName"])
    if role is not None and role.permissions_boundary_id:
        ctx["iam:PermissionsBoundary"] = role.permissions_boundary.arn
    call.authorize(arn, context=ctx)
    services.delete_role_permissions_boundary(
        account=call.account, role_name=call.params["RoleName"], actor=call.actor
    )
    return {}


# --- instance profiles ------------------------------------------------------------------------


@operation(IAM, "CreateInstanceProfile", write=True)
def create_instance_profile(call: Call) -> dict[str, Any]:
    p = call.params
    path = p.get("Path", "/")
    arn = call.arn(f"instance-profile{path}{p['InstanceProfileName']}")
    call.authorize(arn, context=tag_context(p.get("Tags")))
    profile = services.create_instance_profile(
        account=call.account,
        instance_profile_name=p["InstanceProfileName"],
        path=path,
        tags=p.get("Tags") or (),
        actor=call.actor,
    )
    return {"InstanceProfile": instance_profile_out(profile)}


@operation(IAM, "GetInstanceProfile", write=False)
def get_instance_profile(call: Call) -> dict[str, Any]:
    name = call.params["InstanceProfileName"]
    _, arn, ctx = _named(call, InstanceProfile, "instance-profile", name)
    call.authorize(arn, context=ctx)
    profile = selectors.get_instance_profile(account=call.account, instance_profile_name=name)
    return {"InstanceProfile": instance_profile_out(profile)}


@operation(IAM, "ListInstanceProfiles", write=False)
def list_instance_profiles(call: Call) -> dict[str, Any]:
    prefix = call.params.get("PathPrefix", "/")
    call.authorize(call.arn(f"instance-profile{prefix}"))
    page = selectors.list_instance_profiles(
        account=call.account, path_prefix=prefix, **paging(call)
    )
    return page_out(page, "InstanceProfiles", [instance_profile_out(i) for i in page.items])


@operation(IAM, "ListInstanceProfileTags", write=False)
def list_instance_profile_tags(call: Call) -> dict[str, Any]:
    name = call.params["InstanceProfileName"]
    profile, arn, ctx = _named(call, InstanceProfile, "instance-profile", name)
    call.authorize(arn, context=ctx)
    if profile is None:
        raise NoSuchEntity(f"Instance Profile {name} cannot be found.")
    page = selectors.list_tags(profile, **paging(call))
    return page_out(page, "Tags", page.items)


@operation(IAM, "TagInstanceProfile", write=True)
def tag_instance_profile(call: Call) -> dict[str, Any]:
    name = call.params["InstanceProfileName"]
    _, arn, ctx = _named(call, InstanceProfile, "instance-profile", name)
    call.authorize(arn, context={**ctx, **tag_context(call.params["Tags"])})
    services.tag_instance_profile(
        account=call.account,
        instance_profile_name=name,
        tags=call.params["Tags"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "UntagInstanceProfile", write=True)
def untag_instance_profile(call: Call) -> dict[str, Any]:
    name = call.params["InstanceProfileName"]
    _, arn, ctx = _named(call, InstanceProfile, "instance-profile", name)
    call.authorize(arn, context={**ctx, "aws:TagKeys": call.params["TagKeys"]})
    services.untag_instance_profile(
        account=call.account,
        instance_profile_name=name,
        tag_keys=call.params["TagKeys"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "ListInstanceProfilesForRole", write=False)
def list_instance_profiles_for_role(call: Call) -> dict[str, Any]:
    _, arn, ctx = _named(call, Role, "role", call.params["RoleName"])
    call.authorize(arn, context=ctx)
    page = selectors.list_instance_profiles_for_role(
        account=call.account, role_name=call.params["RoleName"], **paging(call)
    )
    return page_out(page, "InstanceProfiles", [instance_profile_out(i) for i in page.items])


@operation(IAM, "DeleteInstanceProfile", write=True)
def delete_instance_profile(call: Call) -> dict[str, Any]:
    name = call.params["InstanceProfileName"]
    _, arn, ctx = _named(call, InstanceProfile, "instance-profile", name)
    call.authorize(arn, context=ctx)
    services.delete_instance_profile(
        account=call.account, instance_profile_name=name, actor=call.actor
    )
    return {}


@operation(IAM, "AddRoleToInstanceProfile", write=True)
def add_role_to_instance_profile(call: Call) -> dict[str, Any]:
    name = call.params["InstanceProfileName"]
    _, arn, ctx = _named(call, InstanceProfile, "instance-profile", name)
    call.authorize(arn, context=ctx)
    # "The caller of this operation must be granted the PassRole permission on the IAM role"
    # (IAM API Reference, AddRoleToInstanceProfile); instance profiles are EC2's.
    _, role_arn, role_ctx = _named(call, Role, "role", call.params["RoleName"])
    call.authorize(
        role_arn,
        action="iam:PassRole",
        context={**role_ctx, "iam:PassedToService": "ec2.amazonaws.com"},
    )
    services.add_role_to_instance_profile(
        account=call.account,
        instance_profile_name=name,
        role_name=call.params["RoleName"],
        actor=call.actor,
    )
    return {}


@operation(IAM, "RemoveRoleFromInstanceProfile", write=True)
def remove_role_from_instance_profile(call: Call) -> dict[str, Any]:
    name = call.params["InstanceProfileName"]
    _, arn, ctx = _named(call, InstanceProfile, "instance-profile", name)
    call.authorize(arn, context=ctx)
    services.remove_role_from_instance_profile(
        account=call.account,
        instance_profile_name=name,
        role_name=call.params["RoleName"],
        actor=call.actor,
    )
    return {}


# --- access keys ------------------------------------------------------------------------------


@operation(IAM, "CreateAccessKey", write=True)
def create_access_key(call: Call) -> dict[str, Any]:
    _user, arn, ctx, name = _user_target(call)
    call.authorize(arn, context=ctx)
    created = services.create_access_key(account=call.account, user_name=name, actor=call.actor)
    key = created.access_key
    return {
        "AccessKey": {
            "UserName": key.user.name,
            "AccessKeyId": key.access_key_id,
            "Status": key.status,
            "SecretAccessKey": created.secret_access_key,
            "CreateDate": key.created_at,
        }
    }


@operation(IAM, "UpdateAccessKey", write=True)
def update_access_key(call: Call) -> dict[str, Any]:
    _user, arn, ctx, name = _user_target(call)
    call.authorize(arn, context=ctx)
    services.update_access_key(
        account=call.account,
        access_key_id=call.params["AccessKeyId"],
        status=call.params["Status"],
        user_name=name,
        actor=call.actor,
    )
    return {}


@operation(IAM, "DeleteAccessKey", write=True)
def delete_access_key(call: Call) -> dict[str, Any]:
    _user, arn, ctx, name = _user_target(call)
    call.authorize(arn, context=ctx)
    services.delete_access_key(
        account=call.account,
        access_key_id=call.params["AccessKeyId"],
        user_name=name,
        actor=call.actor,
    )
    return {}


@operation(IAM, "ListAccessKeys", write=False)
def list_access_keys(call: Call) -> dict[str, Any]:
    user, arn, ctx, name = _user_target(call)
    call.authorize(arn, context=ctx)
    if user is None:
        raise NoSuchEntity(f"The user with name {name} cannot be found.")
    page = selectors.list_access_keys_of(user=user, **paging(call))
    return page_out(page, "AccessKeyMetadata", [key_out(k) for k in page.items])


@operation(IAM, "GetAccessKeyLastUsed", write=False)
def get_access_key_last_used(call: Call) -> dict[str, Any]:
    key_id = call.params["AccessKeyId"]
    key = (
        AccessKey.objects.select_related("user")
        .filter(access_key_id=key_id, user__account=call.account)
        .first()
    )
    # Authorized on the key's user (Service Authorization Reference: resource type user).
    call.authorize(key.user.arn if key is not None else call.arn("user/*"))
    key = selectors.get_access_key_last_used(account=call.account, access_key_id=key_id)
    last_used: dict[str, Any] = {"ServiceName": "N/A", "Region": "N/A"}
    if key.last_used_at is not None:
        last_used = {
            "LastUsedDate": key.last_used_at,
            "ServiceName": key.last_used_service or "N/A",
            "Region": key.last_used_region or "N/A",
        }
    return {"UserName": key.user.name, "AccessKeyLastUsed": last_used}


# --- account ----------------------------------------------------------------------------------


@operation(IAM, "CreateAccountAlias", write=True)
def create_account_alias(call: Call) -> dict[str, Any]:
    call.authorize("*")
    services.create_account_alias(
        account=call.account, account_alias=call.params["AccountAlias"], actor=call.actor
    )
    return {}


@operation(IAM, "DeleteAccountAlias", write=True)
def delete_account_alias(call: Call) -> dict[str, Any]:
    call.authorize("*")
    services.delete_account_alias(
        account=call.account, account_alias=call.params["AccountAlias"], actor=call.actor
    )
    return {}


@operation(IAM, "ListAccountAliases", write=False)
def list_account_aliases(call: Call) -> dict[str, Any]:
    call.authorize("*")
    return {
        "AccountAliases": selectors.list_account_aliases(account=call.account),
        "IsTruncated": False,
    }


@operation(IAM, "GetAccountSummary", write=False)
def get_account_summary(call: Call) -> dict[str, Any]:
    call.authorize("*")
    return {"SummaryMap": selectors.get_account_summary(account=call.account)}


@operation(IAM, "GetAccountAuthorizationDetails", write=False)
def get_account_authorization_details(call: Call) -> dict[str, Any]:
    call.authorize("*")
    return selectors.get_account_authorization_details(
        account=call.account, filters=call.params.get("Filter") or (), **paging(call)
    )
