"""The decision API's lean path: ``/v1/`` requests skip the console's middleware.

The decision API authenticates every call with SigV4 (``api.decision``) and keeps no session,
cookie, CSRF token, message, OTP device or HTML page, yet the console's middleware (sessions,
CSRF, authentication, OTP, messages, the sign-in rules, CSP, htmx) cost more per request than a
decision does. ``DecisionApiMiddleware`` sits right after Django's ``SecurityMiddleware`` (so
``/v1/`` answers keep its headers: nosniff, Referrer-Policy, COOP, HSTS and the HTTPS redirect
when configured) and answers ``/v1/`` itself, resolving against ``api.decision_urls`` only.
``/v1/ping`` takes the same path, so it stays an honest ceiling for the benchmark
(``policies.bench_propagation``).

JSON answers get a fixed, strict Content-Security-Policy and X-Frame-Options (what the console's
middleware would have added, without building a policy per request), and a Content-Length.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.urls import Resolver404, ResolverMatch, get_resolver

PREFIX = "/v1/"
_CSP = "default-src 'none'; frame-ancestors 'none'"


class DecisionApiMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.resolver = get_resolver("api.decision_urls")
        # Paths resolved before: the decision API's are fixed strings, a handful in all, and
        # only successful resolutions are remembered.
        self.matches: dict[str, ResolverMatch] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if not path.startswith(PREFIX):
            return self.get_response(request)
        # The console's CommonMiddleware, which checks Host against ALLOWED_HOSTS, is skipped:
        # check it here (DisallowedHost answers 400).
        request.get_host()
        match = self.matches.get(path)
        try:
            if match is None:
                match = self.resolver.resolve("/" + path[len(PREFIX) :])
                if not match.kwargs and not match.args and len(self.matches) < 64:
                    self.matches[path] = match
        except Resolver404:
            response: HttpResponse = HttpResponseNotFound(
                b'{"error":{"code":"NotFound","message":"No such decision API path."}}',
                content_type="application/json",
            )
        else:
            request.resolver_match = match
            response = match.func(request, *match.args, **match.kwargs)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not response.streaming and "Content-Length" not in response.headers:
            # What CommonMiddleware would add: without it gunicorn sends the answer chunked.
            response.headers["Content-Length"] = str(len(response.content))
        return response
