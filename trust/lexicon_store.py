"""The scorer's lexicon, read from the admin-edited tables.

Building a ``Lexicon`` teaches jieba thousands of words, so each process keeps
the last one it built and rebuilds only when the tables change (their row
counts or latest ``updated_at`` differ): one cheap query per use, and every
process sees an operator's edit on its next assessment.
"""

import json
import threading

from django.db import connection

from trust.models import CategoryAudience, Domain, DomainRelation, DomainTerm
from trust.scoring.lexicon import DEFAULT_LEXICON_PATH, Lexicon

_lock = threading.Lock()
_cached: tuple[tuple, Lexicon] | None = None


def lexicon_version() -> tuple:
    """Row counts and latest edits of the four tables, in one round trip."""
    tables = [model._meta.db_table for model in (Domain, DomainTerm, CategoryAudience, DomainRelation)]
    sql = " UNION ALL ".join(f"SELECT COUNT(*), MAX(updated_at) FROM {table}" for table in tables)  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return tuple(cursor.fetchall())


def lexicon_as_dict() -> dict:
    """The tables in the shape of ``trust/data/lexicon.json`` (what ``Lexicon.from_dict`` reads)."""
    terms: dict[int, list[dict]] = {}
    for term in DomainTerm.objects.values("domain_id", "term", "lang", "kind", "weight"):
        terms.setdefault(term.pop("domain_id"), []).append(term)
    categories: dict[str, list[dict]] = {}
    for row in CategoryAudience.objects.values("category__path", "domain__key", "weight"):
        categories.setdefault(row["category__path"], []).append(
            {"domain": row["domain__key"], "weight": row["weight"]}
        )
    return {
        "domains": [
            {**domain, "terms": terms.get(domain.pop("id"), [])}
            for domain in Domain.objects.values("id", "key", "name_zh", "name_en", "universal")
        ],
        "categories": [{"path": path, "domains": domains} for path, domains in categories.items()],
        "relations": [
            {"source": r["source__key"], "target": r["target__key"], "weight": r["weight"]}
            for r in DomainRelation.objects.values("source__key", "target__key", "weight")
        ],
    }


def current_lexicon() -> Lexicon:
    return current_lexicon_versioned()[1]


def current_lexicon_versioned() -> tuple[str, Lexicon]:
    """The lexicon and a text naming its version (stored with profiles built from it)."""
    global _cached
    version = lexicon_version()
    cached = _cached
    if cached is None or cached[0] != version:
        with _lock:
            if _cached is None or _cached[0] != version:
                _cached = (version, Lexicon.from_dict(lexicon_as_dict()))
            cached = _cached
    return repr(cached[0]), cached[1]


def shipped_lexicon_data() -> dict:
    """The lexicon that ships with the code: the seed of the tables."""
    with DEFAULT_LEXICON_PATH.open(encoding="utf-8") as handle:
        return json.load(handle)
