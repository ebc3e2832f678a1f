"""Server time of the main console pages on the seeded demo account (see seed_demo).

    manage.py bench_console --requests 50

Requests go through Django's test client, so the whole middleware stack (sessions, sign-in's
session checks, CSRF, CSP) and the engine's authorization run as in production; network and
browser time are not included. Prints p50/p95 per page and a final JSON line. Cached figures
(the users total, the dashboard) are also timed uncached, outside any page. Run it with
``DEBUG=0`` (and production-like settings) for numbers that mean something.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models.functions import Lower
from django.test import Client
from django.urls import reverse

from console import queries
from console.management.commands.seed_demo import DEMO_ACCOUNT
from console.queries import encode_cursor
from identity.models import Account, User
from identity.request_context import AUTHENTICATED_AT_SESSION_KEY, MFA_AUTHENTICATED_AT_SESSION_KEY
from policies.models import ManagedPolicy

GOAL_MS = 150.0


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


class Command(BaseCommand):
    help = "Measure the console's server time (p50/p95) on the seeded demo account."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--requests", type=int, default=50)
        parser.add_argument("--as", dest="as_user", default="root", help="root, or a user name")

    def handle(self, *args: Any, **opts: Any) -> None:
        if "testserver" not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        if opts["as_user"] == "root":
            user = User.objects.filter(account_id=DEMO_ACCOUNT, is_root=True).first()
        else:
            user = User.objects.filter(account_id=DEMO_ACCOUNT, name=opts["as_user"]).first()
        if user is None:
            raise CommandError("No demo account: run manage.py seed_demo first.")
        sample_user = (
            User.objects.filter(account_id=DEMO_ACCOUNT, is_root=False).order_by("name").first()
        )
        policy = (
            ManagedPolicy.objects.filter(account_id=DEMO_ACCOUNT)
            .order_by("-attachment_count")
            .first()
        )
        if sample_user is None or policy is None:
            raise CommandError("The demo account has no users or policies: run seed_demo.")
        client = Client()
        client.force_login(user)
        session = client.session
        now = datetime.now(UTC).isoformat()
        session[AUTHENTICATED_AT_SESSION_KEY] = now
        session[MFA_AUTHENTICATED_AT_SESSION_KEY] = now
        session.save()
        # A page nine tenths of the way through the list, by name (keyset: as cheap as page 1).
        demo_users = User.objects.filter(account_id=DEMO_ACCOUNT, is_root=False)
        deep = demo_users.order_by(Lower("name"), "pk")[demo_users.count() * 9 // 10]
        after = encode_cursor(deep.name.lower(), deep.pk)
        pages = {
            "users_list": reverse("console:users"),
            "users_list_filtered": reverse("console:users") + "?mfa=no&password=yes&sort=-created",
            "users_list_deep_page": reverse("console:users") + f"?after={after}",
            "users_list_group": reverse("console:users") + "?group=group-00042",
            "user_detail": reverse("console:user_detail", args=[sample_user.name]),
            "policy_detail": reverse("console:policy_detail", args=[policy.arn]),
            "dashboard": reverse("console:dashboard"),
        }
        results: dict[str, dict[str, float]] = {}
        users = User.objects.filter(account_id=DEMO_ACCOUNT).count()
        for name, url in pages.items():
            client.get(url)  # warm up connection and caches once
            timings = []
            for _ in range(opts["requests"]):
                start = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise CommandError(f"{url} answered {response.status_code}")
            results[name] = {
                "p50_ms": round(statistics.median(timings), 1),
                "p95_ms": round(_percentile(timings, 95), 1),
            }
            self.stdout.write(
                f"{name:28} p50 {results[name]['p50_ms']:8.1f} ms   "
                f"p95 {results[name]['p95_ms']:8.1f} ms"
            )
        # The figures behind the cached pages, computed without the cache (what a page costs
        # right after a change).
        account = Account.objects.get(pk=DEMO_ACCOUNT)
        uncached = {
            "dashboard_figures_uncached": lambda: queries.compute_dashboard_figures(account),
            "users_total_uncached": lambda: queries.users_queryset(
                account, queries.UserFilters()
            ).count(),
        }
        for name, compute in uncached.items():
            compute()
            timings = []
            for _ in range(max(5, opts["requests"] // 5)):
                start = time.perf_counter()
                compute()
                timings.append((time.perf_counter() - start) * 1000)
            results[name] = {
                "p50_ms": round(statistics.median(timings), 1),
                "p95_ms": round(_percentile(timings, 95), 1),
            }
            self.stdout.write(
                f"{name:28} p50 {results[name]['p50_ms']:8.1f} ms   "
                f"p95 {results[name]['p95_ms']:8.1f} ms   (no cache, not a page)"
            )
        summary = {
            "benchmark": "console",
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "users": users,
            "requests_per_page": opts["requests"],
            "goal_p95_ms": GOAL_MS,
            "pages": results,
            "debug": settings.DEBUG,
            "meets_goal": all(r["p95_ms"] <= GOAL_MS for n, r in results.items() if n in pages),
        }
        self.stdout.write(json.dumps(summary))
