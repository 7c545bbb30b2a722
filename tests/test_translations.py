"""Simplified Chinese throughout the owner's admin: a complete catalogue, and no English on the pages.

English stays the source language (msgids); ``locale/zh_Hans`` holds the
catalogue, compiled and committed.
"""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.urls import reverse

from members.models import Membership
from tests.commerce.factories import ProductFactory, SkuFactory, category
from tests.members.factories import CommunityFactory, EntryPlanFactory, MembershipFactory, TierFactory

CATALOGUE = Path(__file__).resolve().parents[1] / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
# Words that stay as they are in Chinese admin screens.
ALLOWED_WORDS = {"KOL", "KOLs", "DAU", "MAU", "SKU", "ID", "CNY", "Webhook", "WeChat"}
ENGLISH_PHRASE = re.compile(r"[A-Za-z][a-z]+(?:[ ,]+[A-Za-z][a-z]+){2,}")


def _unquote(lines: list[str]) -> str:
    return (
        "".join(re.findall(r'^"(.*)"$', line.strip())[0] for line in lines)
        .encode()
        .decode("unicode_escape")
        .encode("latin-1")
        .decode("utf-8")
    )


def catalogue_entries() -> list[dict]:
    """Each entry of the .po file: msgid, its translations, and whether it is fuzzy."""
    entries = []
    for block in CATALOGUE.read_text(encoding="utf-8").split("\n\n"):
        lines = [line for line in block.strip().splitlines() if not line.startswith("#~")]
        fields: dict[str, list[str]] = {}
        current = None
        for line in lines:
            if line.startswith("#"):
                continue
            match = re.match(r"^(msgid|msgid_plural|msgstr(?:\[\d+\])?|msgctxt) (.*)$", line)
            if match:
                current = match.group(1)
                fields[current] = [match.group(2)]
            elif current and line.startswith('"'):
                fields[current].append(line)
        if "msgid" not in fields:
            continue
        entries.append(
            {
                "msgid": _unquote(fields["msgid"]),
                "msgstrs": [_unquote(value) for key, value in fields.items() if key.startswith("msgstr")],
                "fuzzy": any(line.startswith("#,") and "fuzzy" in line for line in lines),
            }
        )
    return [entry for entry in entries if entry["msgid"]]  # the header has an empty msgid


class VisibleText(HTMLParser):
    """The text a reader sees: text nodes outside scripts and styles, plus buttons' and fields' labels."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in {"script", "style", "template"}:
            self._hidden += 1
        attributes = dict(attrs)
        for name in ("title", "placeholder", "aria-label"):
            if attributes.get(name):
                self.parts.append(attributes[name])
        if tag == "input" and attributes.get("type") in {"submit", "button"} and attributes.get("value"):
            self.parts.append(attributes["value"])

    def handle_endtag(self, tag):
        if tag in {"script", "style", "template"} and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return "\n".join(parser.parts)


def test_every_catalogue_entry_is_translated():
    untranslated = [
        entry["msgid"]
        for entry in catalogue_entries()
        if entry["fuzzy"] or not entry["msgstrs"] or not all(entry["msgstrs"])
    ]

    assert untranslated == []


@pytest.fixture
def owner_pages(db, client):
    """The pages an owner works in, over a community with a plan, a tier, members and a misfit product."""
    community = CommunityFactory(name="财经频道书友会", attributes=["财经", "投资理财"])
    EntryPlanFactory(community=community)
    TierFactory(community=community, level=1)
    MembershipFactory(community=community, role=Membership.Role.KOL)
    product = ProductFactory(
        community=community, title="千岛湖杨梅", category=category("生鲜/水果"), tags=["杨梅"]
    )
    SkuFactory(product=product)
    client.force_login(community.owner)
    return {
        "community list": reverse("admin:members_community_changelist"),
        "community change": reverse("admin:members_community_change", args=[community.pk]),
        "community add": reverse("admin:members_community_add"),
        "product list": reverse("admin:commerce_product_changelist"),
        "product add": reverse("admin:commerce_product_add"),
        "product change": reverse("admin:commerce_product_change", args=[product.pk]),
        "dashboard": reverse("admin:members_community_dashboard", args=[community.pk]),
        "admin index": reverse("admin:index"),
    }


def rendered(client, url: str) -> str:
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 200, url
    assert response.headers["Content-Language"] == "zh-hans"
    return visible_text(response.content.decode())


PAGES = [
    "community list",
    "community change",
    "community add",
    "product list",
    "product add",
    "product change",
    "dashboard",
    "admin index",
]


@pytest.mark.parametrize("page", PAGES)
def test_owner_pages_show_none_of_our_english_source_strings(client, owner_pages, page):
    text = rendered(client, owner_pages[page])
    # Longer source strings only: a short one ("ID", "SKU") may rightly stay as it is.
    sources = {
        entry["msgid"]
        for entry in catalogue_entries()
        if len(entry["msgid"]) >= 8 and " " in entry["msgid"] and "%" not in entry["msgid"]
    }

    assert sorted(source for source in sources if source in text) == []


@pytest.mark.parametrize("page", PAGES)
def test_owner_pages_have_no_english_phrases(client, owner_pages, page):
    """Catches strings that never reached the catalogue (a missing gettext, an unmerged msgid)."""
    text = rendered(client, owner_pages[page])
    phrases = [
        phrase
        for phrase in ENGLISH_PHRASE.findall(text)
        if not set(re.findall(r"[A-Za-z]+", phrase)) <= ALLOWED_WORDS
    ]

    assert phrases == [], phrases
