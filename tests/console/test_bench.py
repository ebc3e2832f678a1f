"""The shipped benchmark commands run end to end on a small data set (the figures themselves
are printed, never asserted: speed is read from ``bench_console`` at 100,000 users)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from identity.models import User


@pytest.mark.django_db(transaction=True)
def test_it_seeds_the_demo_account_and_measures_every_page(builtin_policies):
    call_command("seed_demo", users=30, groups=4, policies=3, roles=2, stdout=io.StringIO())
    out = io.StringIO()

    call_command("bench_console", requests=2, stdout=out)

    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["users"] == 31  # 30 and the root
    assert set(summary["pages"]) == {
        "users_list",
        "users_list_filtered",
        "users_list_deep_page",
        "users_list_group",
        "user_detail",
        "policy_detail",
        "dashboard",
        "dashboard_figures_uncached",
        "users_total_uncached",
    }
    assert User.objects.filter(account_id="999999999999", name="user-000029").exists()
