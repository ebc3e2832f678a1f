"""How the console authorizes itself: every view names the IAM action it performs.

A view is wrapped in ``@console_action("iam:ListUsers", resource=...)``. The wrapper sends
anonymous visitors to sign-in, builds the signed-in principal's ``Actor`` and asks the policy
engine through ``policies.access`` — the same path the Query API uses — so a console user can
do exactly what their policies allow (the root user everything, as in AWS).

Views on one object (a user, a group, a policy) do not know the object's ARN from the URL (the
ARN includes the path), so they declare ``resource=None`` and fetch with an ``access_*`` helper,
which looks the object up *in the signed-in account only* and authorizes on its ARN:

- denied → 403 with AWS's message, whether or not the object exists (a name that does not
  exist is authorized against the ARN it would have at path ``/``, so a denied user cannot
  probe which names exist);
- allowed but not found (or in another account) → 404.

A view that returns without having authorized is a bug; the wrapper then answers 403 rather
than let the page out (fail closed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from audit.context import Actor
from identity import naming
from identity.errors import AccessDenied
from identity.models import Account, Group, Role, User
from identity.request_context import actor_from_request
from policies import access as policy_access
from policies import engine
from policies.models import ManagedPolicy

ResourceFn = Callable[..., str]
V = TypeVar("V", bound=Callable[..., HttpResponse])

# Where anonymous visitors are sent. The sign-in issue adds the ``signin`` URL; until it exists
# the console still refuses anonymous visitors, pointing at the path it will have.
FALLBACK_SIGNIN_PATH = "/signin/"


class ConsoleDenied(Exception):
    """Raised inside a view when the engine denies; rendered as AWS's 403 page."""

    def __init__(self, message: str, action: str, resource: str) -> None:
        super().__init__(message)
        self.message = message
        self.action = action
        self.resource = resource


@dataclass(frozen=True)
class DeclaredAction:
    action: str
    resource: ResourceFn | None


def account_resource(pattern: str) -> ResourceFn:
    """A resource function for an account-wide ARN, e.g. ``account_resource("user/*")``."""

    def resource(request: HttpRequest, **kwargs: Any) -> str:
        return naming.iam_arn(request.user.account_id, pattern)  # type: ignore[union-attr]

    return resource


def everything(request: HttpRequest, **kwargs: Any) -> str:
    """``*``: for actions IAM authorizes without a resource (ListUsers, GetAccountSummary,
    GenerateCredentialReport, ... take ``"Resource": "*"`` in AWS's own policies)."""
    return "*"


# --- the per-request actor, compiled policy set and decisions -----------------------------


def console_actor(request: HttpRequest) -> Actor:
    actor = getattr(request, "_portcullis_actor", None)
    if actor is None:
        actor = actor_from_request(request)
        request._portcullis_actor = actor  # type: ignore[attr-defined]
    return actor


def _policy_set(request: HttpRequest, actor: Actor) -> engine.CompiledPolicySet | None:
    if actor.kind == "root":
        return None
    cached = getattr(request, "_portcullis_policy_set", None)
    if cached is None:
        try:
            cached = policy_access.compiled_policy_set(actor)
        except Exception:
            # policies.access.decide compiles (and fails closed) itself when given nothing.
            return None
        request._portcullis_policy_set = cached  # type: ignore[attr-defined]
    return cached


def decide(
    request: HttpRequest, action: str, resource: str, *, context: dict[str, Any] | None = None
) -> engine.Decision:
    """The engine's decision for the signed-in principal, memoised for this request."""
    memo: dict[tuple[str, str], engine.Decision] = request.__dict__.setdefault(
        "_portcullis_decisions", {}
    )
    key = (action, resource)
    if context is None and key in memo:
        return memo[key]
    actor = console_actor(request)
    decision = policy_access.decide(
        actor, action, resource, context=context, policy_set=_policy_set(request, actor)
    )
    if context is None:
        memo[key] = decision
    return decision


def can(request: HttpRequest, action: str, resource: str = "*") -> bool:
    """Whether the signed-in principal may — for showing or hiding links and buttons."""
    if not request.user.is_authenticated:
        return False
    return decide(request, action, resource).allowed


def authorize(request: HttpRequest, action: str, resource: str) -> engine.Decision:
    """Allow, or raise ``ConsoleDenied`` with AWS's AccessDenied message."""
    decision = decide(request, action, resource)
    request._portcullis_authorized = True  # type: ignore[attr-defined]
    if not decision.allowed:
        actor = console_actor(request)
        raise ConsoleDenied(
            engine.access_denied_message(actor.arn, action, resource, decision), action, resource
        )
    return decision


def signed_in_account(request: HttpRequest) -> Account:
    return request.user.account  # type: ignore[union-attr]


# --- the decorator ------------------------------------------------------------------------


def signin_url() -> str:
    try:
        return reverse(settings.LOGIN_URL)
    except NoReverseMatch:
        return FALLBACK_SIGNIN_PATH


def denied_response(request: HttpRequest, exc: ConsoleDenied | AccessDenied) -> HttpResponse:
    message = exc.message
    return render(
        request,
        "console/403.html",
        {"message": message, "nav": navigation(request)},
        status=403,
    )


def console_action(action: str, *, resource: ResourceFn | None = None) -> Callable[[V], V]:
    """Declare the IAM action (and, for account-wide pages, the resource) of a console view.

    ``resource`` None means the view authorizes on the object it fetches with an ``access_*``
    helper, which uses this declared action unless told another.
    """

    def decorate(view: V) -> V:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), signin_url())
            request.console_action = action  # type: ignore[attr-defined]
            request._portcullis_authorized = False  # type: ignore[attr-defined]
            try:
                if resource is not None:
                    authorize(request, action, resource(request, **kwargs))
                response = view(request, *args, **kwargs)
            except (ConsoleDenied, AccessDenied) as exc:
                return denied_response(request, exc)
            if not request._portcullis_authorized:  # type: ignore[attr-defined]
                raise RuntimeError(f"console view {view.__name__} did not authorize {action}")
            return response

        wrapper.console_action = DeclaredAction(action, resource)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


# --- fetch-and-authorize helpers ----------------------------------------------------------


def _fetch(
    request: HttpRequest,
    *,
    found: Any,
    arn_if_missing: str,
    action: str | None,
) -> Any:
    action = action or request.console_action  # type: ignore[attr-defined]
    authorize(request, action, found.arn if found is not None else arn_if_missing)
    if found is None:
        raise Http404("No such entity in this account.")
    return found


def access_user(request: HttpRequest, user_name: str, action: str | None = None) -> User:
    account = signed_in_account(request)
    user = (
        User.objects.filter(account=account, is_root=False, name__iexact=user_name)
        .select_related("permissions_boundary", "account")
        .first()
    )
    return _fetch(
        request,
        found=user,
        arn_if_missing=naming.user_arn(account.id, "/", user_name),
        action=action,
    )


def access_group(request: HttpRequest, group_name: str, action: str | None = None) -> Group:
    account = signed_in_account(request)
    group = Group.objects.filter(account=account, name__iexact=group_name).first()
    return _fetch(
        request,
        found=group,
        arn_if_missing=naming.group_arn(account.id, "/", group_name),
        action=action,
    )


def access_role(request: HttpRequest, role_name: str, action: str | None = None) -> Role:
    account = signed_in_account(request)
    role = (
        Role.objects.filter(account=account, name__iexact=role_name)
        .select_related("permissions_boundary")
        .first()
    )
    return _fetch(
        request,
        found=role,
        arn_if_missing=naming.role_arn(account.id, "/", role_name),
        action=action,
    )


def access_policy(
    request: HttpRequest, policy_arn: str, action: str | None = None
) -> ManagedPolicy:
    """A managed policy of the signed-in account, or a built-in (account ``aws``): built-ins are
    readable by everyone allowed, as in IAM, but never writable (the services refuse)."""
    account = signed_in_account(request)
    policy = None
    parts = naming.parse_arn(policy_arn)
    if parts and parts["service"] == "iam" and parts["resource"].startswith("policy/"):
        owner = parts["account"]
        if owner not in (account.id, naming.AWS_MANAGED_ACCOUNT):
            # Another account's policy is not visible from this console at all.
            request._portcullis_authorized = True  # type: ignore[attr-defined]
            raise Http404("No such entity in this account.")
        else:
            path, _, name = parts["resource"][len("policy") :].rpartition("/")
            policy = ManagedPolicy.objects.filter(
                account_id=owner, name=name, path=path + "/"
            ).first()
    return _fetch(request, found=policy, arn_if_missing=policy_arn, action=action)


# --- navigation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    action: str
    resource_pattern: str | None  # None: "*"


NAV: tuple[NavItem, ...] = (
    NavItem("Dashboard", "console:dashboard", "iam:GetAccountSummary", None),
    NavItem("Users", "console:users", "iam:ListUsers", None),
    NavItem("Groups", "console:groups", "iam:ListGroups", None),
    NavItem("Roles", "console:roles", "iam:ListRoles", None),
    NavItem("Policies", "console:policies", "iam:ListPolicies", None),
    NavItem("Identity providers", "federation:providers", "iam:ListOpenIDConnectProviders", None),
    NavItem("Policy simulator", "console:simulator", "iam:SimulateCustomPolicy", None),
    NavItem("Account settings", "console:account", "iam:GetAccountPasswordPolicy", None),
    NavItem("Credential report", "console:credential_report", "iam:GetCredentialReport", None),
    NavItem("Audit trail", "console:audit", "cloudtrail:LookupEvents", None),
)


def navigation(request: HttpRequest) -> list[dict[str, str]]:
    """The navigation the signed-in principal may use: evaluated once per request against
    the compiled policy set; the views check again on their own."""
    cached = getattr(request, "_portcullis_nav", None)
    if cached is not None:
        return cached
    items: list[dict[str, str]] = []
    if request.user.is_authenticated:
        current = getattr(getattr(request, "resolver_match", None), "view_name", "")
        for item in NAV:
            if can(request, item.action, "*"):
                items.append(
                    {
                        "label": item.label,
                        "url": reverse(item.url_name),
                        "current": "page" if current == item.url_name else "",
                    }
                )
    request._portcullis_nav = items  # type: ignore[attr-defined]
    return items


def render_page(
    request: HttpRequest, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    """``render`` with the navigation and the ``can`` map for the page's buttons."""
    context = dict(context or {})
    context["nav"] = navigation(request)
    return render(request, template, context, status=status)


def allowed_actions(request: HttpRequest, pairs: Iterable[tuple[str, str]]) -> dict[str, bool]:
    """``{"iam:CreateUser": True, ...}`` for the buttons of a page (resource per action)."""
    return {action.replace(":", "_"): can(request, action, resource) for action, resource in pairs}
