"""The users list: keyset pages that neither skip nor repeat a user, in every sort, and its
capped, cached total."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from console import queries
from identity import naming
from identity import services as identity_services
from identity.models import Account, User

pytestmark = pytest.mark.django_db

NEXT = re.compile(r'href="(\?[^"]*)" rel="next"')
PREV = re.compile(r'href="(\?[^"]*)" rel="prev"')
NAME = re.compile(r'<td><a href="/users/([^/]+)/">')


def seed(account: Account, count: int) -> None:
    """Users with ties and nulls on purpose: two share each creation time, and every third
    has never signed in, so the cursor's tie-break and null handling are exercised."""
    now = timezone.now()
    User.objects.bulk_create(
        [
            User(
                account=account,
                name=f"{'U' if i % 2 else 'u'}ser{i:03}",
                unique_id=naming.new_unique_id(naming.USER_ID_PREFIX),
                password="!unusable",
                created_at=now - timedelta(days=i // 2),
                password_last_used=None if i % 3 == 0 else now - timedelta(hours=i % 7),
            )
            for i in range(count)
        ]
    )


def follow(client, page: str, link: re.Pattern[str]) -> str | None:
    match = link.search(page)
    if match is None:
        return None
    return client.get(reverse("console:users") + html.unescape(match[1])).content.decode()


def walk(client, params: dict[str, str]) -> tuple[list[str], list[str]]:
    """Every name, reading forwards with "Next"; then backwards from the last page."""
    pages = [client.get(reverse("console:users"), params).content.decode()]
    while (page := follow(client, pages[-1], NEXT)) is not None:
        pages.append(page)
        assert len(pages) < 50, "the pager does not move on"
    forwards = [name for page in pages for name in NAME.findall(page)]
    page = pages[-1]
    backwards = NAME.findall(page)
    while (page := follow(client, page, PREV)) is not None:
        backwards = NAME.findall(page) + backwards
        assert len(backwards) <= len(forwards), "the pager does not move back"
    return forwards, backwards


@pytest.mark.parametrize("sort", sorted(queries.USER_SORTS))
def test_it_pages_every_sort_without_skipping_or_repeating_a_user(
    admin_client, account, sort, monkeypatch
):
    monkeypatch.setattr(queries, "PAGE_SIZE", 7)
    seed(account, 40)

    forwards, backwards = walk(admin_client, {"sort": sort})

    everyone = list(
        User.objects.filter(account=account, is_root=False).values_list("name", flat=True)
    )
    assert sorted(forwards) == sorted(everyone)  # each exactly once
    assert backwards == forwards  # "Previous" retraces the same pages
    rows = {u.name: u for u in User.objects.filter(account=account, is_root=False)}
    spec = queries.USER_SORTS[sort]
    if spec.key == "sort_name":
        keys = [n.lower() for n in forwards]
        assert keys == sorted(keys, reverse=spec.descending)
    else:
        values = [getattr(rows[n], spec.key) for n in forwards]
        present = [v for v in values if v is not None]
        assert present == sorted(present, reverse=spec.descending)
        if spec.nullable:
            nulls = [i for i, v in enumerate(values) if v is None]
            # Never signed in: first when ascending, last when descending.
            expected = (
                list(range(len(values) - len(nulls), len(values)))
                if spec.descending
                else list(range(len(nulls)))
            )
            assert nulls == expected


def test_it_starts_at_the_first_page_when_the_cursor_is_not_one_of_ours(admin_client, account):
    seed(account, 3)

    response = admin_client.get(reverse("console:users"), {"after": "not-a-cursor!!"})

    assert response.status_code == 200
    assert NAME.findall(response.content.decode())[:2] == ["admin", "user000"]


def test_it_counts_the_whole_list_and_caps_a_filtered_count(admin_client, account, monkeypatch):
    seed(account, 12)
    page = admin_client.get(reverse("console:users")).content.decode()
    assert re.search(r'id="users-total">13 users <span', page)  # 12 + admin

    monkeypatch.setattr(queries, "COUNT_CAP", 5)
    page = admin_client.get(reverse("console:users"), {"q": "user"}).content.decode()
    assert re.search(r'id="users-total">More than 5 users match', page)


def test_it_recounts_after_a_change(admin_client, account, root_actor):
    first = admin_client.get(reverse("console:users")).content.decode()
    assert 'id="users-total">1 user <span' in first

    identity_services.create_user(account=account, user_name="newcomer", actor=root_actor)

    again = admin_client.get(reverse("console:users")).content.decode()
    assert 'id="users-total">2 users <span' in again


def test_it_filters_by_group_name_case_insensitively_and_by_name_prefix(
    admin_client, account, objects
):
    page = admin_client.get(reverse("console:users"), {"group": "DEVS"}).content.decode()
    assert NAME.findall(page) == ["alice"]

    page = admin_client.get(reverse("console:users"), {"q": "AL"}).content.decode()
    assert NAME.findall(page) == ["alice"]
    page = admin_client.get(reverse("console:users"), {"q": "al_"}).content.decode()
    assert NAME.findall(page) == []  # "_" is a character here, not a wildcard
