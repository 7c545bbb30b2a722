"""Every admin page a demo login can reach, opened in a real browser: no error, no English.

Each staff login of the demo (superuser, owner, operator, finance) starts at the admin's home,
follows every menu entry (the home's links and the side menu), and from each list opens its add
page, its first object, that object's other pages (history, dashboard, delete confirmation ...).
Every page must answer 200, show no Django error, and contain no English word that is not data:
words that occur in the database's own text (names, usernames, payloads) and a short list of
brand and technical names are allowed. Screenshots (JPEG, full page) go to
test-artifacts/browser/pages/<login>/, the problems found to test-artifacts/browser/pages/problems.txt.
"""

import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.db import models

from commerce.services.shipments import COMMON_CARRIERS
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.django_db  # reads only: the demo is seeded and served once (conftest)

# Brand, technical and unit names an owner meets as they are (not words that need translating).
ALLOWED_WORDS = {
    "api", "csv", "xlsx", "excel", "pdf", "sku", "id", "url", "https", "http", "json", "email",
    "openid", "unionid", "wechat", "wechatpay", "stripe", "alipay", "cny", "usd", "utc",
    "ip", "webhook", "token", "bearer", "sha", "hmac", "iso", "png", "jpg", "jpeg", "gif",
    "celery", "django", "swagger", "redoc", "openapi", "rest", "app", "ldap",
    "control", "command", "mac",  # keys, in Django's "按住 Control 键或 Mac 上的 Command 键"
    *(code.lower() for code, _name in COMMON_CARRIERS),  # WeChat's delivery ids (SF, ZTO ...)
}  # fmt: skip

# Text nodes worth reading: visible ones (collapsed sections opened first), plus what a user reads
# without it being a text node (button labels, placeholders, the options of a select, the title).
VISIBLE_TEXT_JS = """(data) => {
    for (const details of document.querySelectorAll("details")) details.open = true;  // collapsed sections
    const texts = [document.title];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const node = walker.currentNode;
        const el = node.parentElement;
        if (!el || !node.textContent.trim()) continue;
        if (["SCRIPT", "STYLE", "NOSCRIPT", "TEXTAREA", "OPTION", "TEMPLATE"].includes(el.tagName)) continue;
        if (!el.checkVisibility({visibilityProperty: true}) || el.closest(data)) continue;
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

# Data shown as it is stored, not words: the password hash's summary.
DATA_SELECTOR = ".field-password bdi"

# Links worth following from a page, inside the admin (files to download are not pages).
LINKS_JS = """(selector) => Array.from(document.querySelectorAll(selector))
    .filter(a => !a.hasAttribute("download"))
    .map(a => a.getAttribute("href"))
    .filter(href => href && href.startsWith("/admin/") && !href.includes("/download"))"""

# Starts opening a page (a GET, or a POST of ``fields`` with the page's CSRF token), then returns.
NAVIGATE_JS = """([url, fields]) => setTimeout(() => {
    if (!fields) { location.assign(url); return; }
    const form = document.createElement("form");
    form.method = "post";
    form.action = url;
    const token = document.querySelector("input[name=csrfmiddlewaretoken]");
    fields = {...fields, csrfmiddlewaretoken: token ? token.value : ""};
    for (const [name, value] of Object.entries(fields)) {
        const input = document.createElement("input");
        input.type = "hidden"; input.name = name; input.value = value;
        form.appendChild(input);
    }
    document.body.appendChild(form);
    form.submit();
})"""

# Actions that answer with a confirmation page before doing anything (safe to open).
CONFIRMING_ACTIONS = {"delete_selected", "refund"}
ACTIONS_JS = """() => {
    const first = document.querySelector("#result_list tbody tr:first-child input[name=_selected_action]");
    const select = document.querySelector("#changelist-form select[name=action]");
    if (!first || !select) return [null, []];
    return [first.value, Array.from(select.options).map(option => option.value)];
}"""

# An identifier-like token (usernames, slugs, codes, file names, addresses): data, not words; and
# the rows of a many-to-many table, named by Django itself ("Group_permissions object (7)").
IDENTIFIER = re.compile(r"[A-Za-z]+_\w+ object \(\d+\)|[A-Za-z0-9]*[_\-.@/:=#%+][\w\-.@/:=#%+]*|\w*\d\w*")
WORD = re.compile(r"[A-Za-z]{2,}")


@dataclass(eq=False)
class Walk:
    """One login's walk through the admin: a generator of pages to open (see ``walk_all``)."""

    role: str
    page: object
    data_words: set[str]
    covered: set[str] = field(default_factory=set)  # pages (ids left out) other logins checked
    seen: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    response: object = None  # the last page's response, set by walk_all

    def visit(self, url: str, *, always: bool = False, post: dict | None = None):
        """Open ``url`` once (``yield`` hands it to walk_all); record what is wrong with it.

        With ``post``, the page is what posting those fields answers (an action's confirmation).
        Returns True when it opened cleanly (use with ``yield from``).
        """
        path = urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else "")
        if post:
            path, url = f"{path}#{post['action']}", path
        if path in self.seen or (pattern(path) in self.covered and not always):
            return False
        generic = re.search(r"/(history|delete)/$", path)  # Django's own pages: one of each is enough
        if generic and any(seen.endswith(generic.group()) for seen in self.seen):
            return False
        self.seen.add(path)
        yield path.split("#")[0], post
        shot = ARTIFACTS / "pages" / self.role / f"{len(self.seen):03d}{slug(path)}.jpg"
        shot.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(shot), full_page=True, type="jpeg", quality=70)
        if self.response is None or self.response.status != 200:
            self.problems.append(f"{path}: HTTP {self.response.status if self.response else '-'} ({shot})")
            return False
        texts = self.page.evaluate(VISIBLE_TEXT_JS, DATA_SELECTOR)
        if any("Traceback" in text for text in texts):
            self.problems.append(f"{path}: an error page ({shot})")
            return False
        english = english_words(texts, self.data_words)
        if english:
            self.problems.append(f"{path}: English {sorted(english)} ({shot})")
        return True


def walk_all(walks: list[Walk]) -> None:
    """Run the walks side by side: while one page is read and photographed, the others load.

    Each walk waits for its own navigation to finish (``expect_navigation``: the response, then
    the load event), so the interleaving never decides what a check sees.
    """
    running = {}
    for walk in walks:
        running[walk] = [walk_admin(walk), None]
    while running:
        for walk, (steps, navigation) in list(running.items()):
            if navigation is not None:
                walk.response = navigation.value  # waits for this page only
            try:
                path, post = steps.send(None)
            except StopIteration:
                del running[walk]
                continue
            navigation = walk.page.expect_navigation(wait_until="load", timeout=30_000).__enter__()
            walk.page.evaluate(NAVIGATE_JS, [path, post])
            running[walk][1] = navigation


def pattern(path: str) -> str:
    return re.sub(r"/\d+/", "/<id>/", path)


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
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                words.update(w.lower() for w in WORD.findall(text))
    return words


def walk_admin(walk: Walk):
    """The home, every menu entry, and from each list its add page and first object's pages."""
    yield from walk.visit("/admin/", always=True)
    menu = walk.page.evaluate(LINKS_JS, "#content-main a, #nav-sidebar a, #user-tools a")
    lists, others = [], []
    for href in dict.fromkeys(menu):
        if href.endswith("/logout/"):
            continue
        (lists if re.fullmatch(r"/admin/\w+/\w+/", href) else others).append(href)
    for href in others:
        yield from walk.visit(href)
    for href in lists:
        if not (yield from walk.visit(href)):
            continue
        selected, actions = walk.page.evaluate(ACTIONS_JS)
        add = walk.page.evaluate(LINKS_JS, ".object-tools a.addlink")
        first = walk.page.evaluate(LINKS_JS, "#result_list tbody tr:first-child a")
        for action in sorted(CONFIRMING_ACTIONS.intersection(actions)):  # the first row's confirmation
            yield from walk.visit(href, post={"action": action, "_selected_action": selected, "index": "0"})
        for link in add + first[:1]:
            if (yield from walk.visit(link)):
                for tool in walk.page.evaluate(LINKS_JS, ".object-tools a, .submit-row a.deletelink"):
                    yield from walk.visit(tool)


LOGINS = {"owner": "wu_caijing", "operator": "qian_yunying", "finance": "caiwu_zhao"}


@pytest.fixture(scope="module")
def walks(staff_pages, django_db_blocker):
    """Every login's walk, done once: owner, operator and finance side by side, then the
    superuser through the pages none of them could open."""
    started = time.monotonic()
    with django_db_blocker.unblock():
        data_words = database_words()
    staff = [Walk(role, staff_pages(username), data_words) for role, username in LOGINS.items()]
    walk_all(staff)
    covered = {pattern(path) for walk in staff for path in walk.seen}
    superuser = Walk("superuser", staff_pages("admin"), data_words, covered=covered)
    walk_all([superuser])
    seconds = time.monotonic() - started
    report = ARTIFACTS / "pages" / "problems.txt"
    report.write_text(
        "".join(f"{w.role}: {problem}\n" for w in [*staff, superuser] for problem in w.problems)
    )
    print(
        f"\n{sum(len(w.seen) for w in [*staff, superuser])} admin pages in {seconds:.0f}s; problems: {report}"
    )
    for walk in [*staff, superuser]:
        print(f"  {walk.role}: {len(walk.seen)} pages, screenshots in {ARTIFACTS / 'pages' / walk.role}")
    return {walk.role: walk for walk in [*staff, superuser]}


@pytest.mark.parametrize("role", [*LOGINS, "superuser"])
def test_every_page_a_staff_login_reaches_opens_without_error_or_english(walks, role):
    walk = walks[role]
    assert len(walk.seen) >= 5  # the home, its menu, lists, objects
    assert not walk.problems, "\n".join(walk.problems)


def test_the_english_check_flags_ui_words_and_spares_data_and_names():
    texts = [
        "选择 社群 来修改",
        "Select community to change",
        "保存并继续编辑",
        "Save and continue editing",
        "千岛湖杨梅 5斤装: mismatch",
        "li_xiaoyu · caijing-shuyou · prepay_id=sandbox_3f2a · SKU · CSV · 吴老师 wu",
        "组-权限关系: Group_permissions object (7)",
        "商品: Product object (7)",
    ]
    found = english_words(texts, data_words={"wu"})
    ui = {"Select", "community", "to", "change", "Save", "and", "continue", "editing", "mismatch"}
    assert found == {*ui, "Product", "object"}  # a model of ours without a name of its own
