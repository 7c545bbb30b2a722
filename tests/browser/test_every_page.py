"""Every admin page a demo login can reach, opened in a real browser: no error, no English.

Each staff login of the demo (superuser, owner, operator, finance) starts at the admin's home,
follows every menu entry (the home's links and the side menu), and from each list opens its add
page, its first object, that object's other pages (history, dashboard, delete confirmation ...).
Every page must answer 200, show no Django error, and contain no English word that is not data:
words that occur in the database's own text (names, usernames, payloads) and a short list of
brand and technical names are allowed. Screenshots go to test-artifacts/browser/pages/<login>/.
"""

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.db import models

from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.django_db  # reads only: the demo is seeded and served once (conftest)

# Brand, technical and unit names an owner meets as they are (not words that need translating).
ALLOWED_WORDS = {
    "api", "csv", "xlsx", "excel", "pdf", "sku", "id", "url", "https", "http", "json", "email",
    "openid", "unionid", "wechat", "wechatpay", "stripe", "sandbox", "alipay", "cny", "usd", "utc",
    "ip", "http", "webhook", "token", "bearer", "sha", "hmac", "iso", "png", "jpg", "jpeg", "gif",
    "celery", "django", "swagger", "redoc", "openapi", "rest", "app",
}  # fmt: skip

# Text nodes worth reading: visible ones, plus what a user reads without it being a text node
# (button labels, placeholders, the options of a select, the title).
VISIBLE_TEXT_JS = """() => {
    const texts = [document.title];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const node = walker.currentNode;
        const el = node.parentElement;
        if (!el || !node.textContent.trim()) continue;
        if (["SCRIPT", "STYLE", "NOSCRIPT", "TEXTAREA", "OPTION", "TEMPLATE"].includes(el.tagName)) continue;
        if (!el.checkVisibility({visibilityProperty: true})) continue;
        texts.push(node.textContent);
    }
    for (const el of document.querySelectorAll("input[type=submit], input[type=button], button")) {
        if (el.checkVisibility() && el.value) texts.push(el.value);
    }
    for (const el of document.querySelectorAll("[placeholder]")) {
        if (el.checkVisibility()) texts.push(el.getAttribute("placeholder"));
    }
    for (const select of document.querySelectorAll("select")) {
        if (!select.checkVisibility() && !select.classList.contains("select2-hidden-accessible")) continue;
        for (const option of select.options) texts.push(option.textContent);
    }
    return texts;
}"""

# Links worth following from a page: the side menu and the main content, inside the admin.
LINKS_JS = """(selector) => Array.from(document.querySelectorAll(selector))
    .map(a => a.getAttribute("href")).filter(href => href && href.startsWith("/admin/"))"""

# An identifier-like token (usernames, slugs, codes, file names, addresses): data, not words.
IDENTIFIER = re.compile(r"[A-Za-z0-9]*[_\-.@/:=#%+][\w\-.@/:=#%+]*|\w*\d\w*")
WORD = re.compile(r"[A-Za-z]{2,}")


@dataclass
class Walk:
    role: str
    page: object
    data_words: set[str]
    seen: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    shots: int = 0

    def visit(self, url: str) -> bool:
        """Open ``url`` once; record what is wrong with it. True when it opened cleanly."""
        path = urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
        if path in self.seen:
            return False
        self.seen.add(path)
        response = self.page.goto(path)
        self.page.wait_for_load_state("load")
        self.shots += 1
        shot = ARTIFACTS / "pages" / self.role / f"{self.shots:03d}{slug(path)}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(shot), full_page=True)
        if response is None or response.status != 200:
            self.problems.append(f"{path}: HTTP {response.status if response else '(none)'}")
            return False
        body = self.page.inner_text("body")
        if "Traceback" in body or self.page.query_selector("#summary .exception_value, #traceback"):
            self.problems.append(f"{path}: an error page")
            return False
        english = english_words(self.page.evaluate(VISIBLE_TEXT_JS), self.data_words)
        if english:
            self.problems.append(f"{path}: English {sorted(english)}  ({shot})")
        return True


def slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower().removeprefix("/admin")).rstrip("-")[:90]


def english_words(texts: list[str], data_words: set[str]) -> set[str]:
    found = set()
    for text in texts:
        for word in WORD.findall(IDENTIFIER.sub(" ", text)):
            if word.lower() not in ALLOWED_WORDS and word.lower() not in data_words:
                found.add(word)
    return found


def database_words() -> set[str]:
    """Every word in the database's free text: names, titles, usernames, JSON payloads.

    Fields with choices are left out: their values are shown through (translated) labels.
    """
    words = set()
    for model in apps.get_models():
        text_fields = [
            f.name
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField) and not f.choices
        ]
        for row in model._default_manager.values_list(*text_fields) if text_fields else ():
            for value in row:
                words.update(w.lower() for w in WORD.findall(str(value)))
    return words


def walk_admin(walk: Walk) -> None:
    """The home, every menu entry, and from each list its add page and first object's pages."""
    walk.visit("/admin/")
    menu = walk.page.evaluate(LINKS_JS, "#content-main a, #nav-sidebar a, #user-tools a")
    lists, others = [], []
    for href in dict.fromkeys(menu):
        if href.endswith("/logout/"):
            continue
        (lists if re.fullmatch(r"/admin/\w+/\w+/", href) else others).append(href)
    for href in others:
        walk.visit(href)
    for href in lists:
        if not walk.visit(href):
            continue
        add = walk.page.evaluate(LINKS_JS, ".object-tools a.addlink")
        first = walk.page.evaluate(LINKS_JS, "#result_list tbody tr:first-child a")
        for href in add + first[:1]:
            if walk.visit(href):
                for tool in walk.page.evaluate(LINKS_JS, ".object-tools a, .submit-row a.deletelink"):
                    walk.visit(tool)


@pytest.mark.parametrize(
    "role,username",
    [
        ("superuser", "admin"),
        ("owner", "wu_caijing"),
        ("operator", "qian_yunying"),
        ("finance", "caiwu_zhao"),
    ],
)
def test_every_page_a_staff_login_reaches_opens_without_error_or_english(staff_pages, role, username):
    walk = Walk(role=role, page=staff_pages(username), data_words=database_words())
    walk_admin(walk)
    print(f"\n{role}: {len(walk.seen)} pages, screenshots in {ARTIFACTS / 'pages' / role}")
    assert len(walk.seen) >= 5
    assert not walk.problems, "\n".join(walk.problems)
