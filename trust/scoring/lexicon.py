"""The domain knowledge the scorer reasons with, built from plain data.

The data (``trust/data/lexicon.json``, later DB rows edited in the admin) says
which words belong to which domain, which domains' audiences buy each catalog
category, and which audiences also buy from a neighbouring domain. This module
turns it into fast lookups and matches free text (Chinese or English) against it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jieba
import opencc

DEFAULT_LEXICON_PATH = Path(__file__).resolve().parents[1] / "data" / "lexicon.json"

# A term found inside a longer token (not as the token itself) counts a little less.
INNER_MATCH_FACTOR = 0.8
# A one-character term jieba split off a longer run of characters (猫 of 猫山王) counts half.
GLUED_CHARACTER_FACTOR = 0.5
# A direct relation at least this strong makes two domains one sense of a word; a weaker one (coffee
# drinkers buy some food) does not: 烘焙 among coffee words is roasting, among bread words baking.
SENSE_RELATION = 0.4
# English n-grams looked up as terms ("value investing", "trail running shoes").
MAX_ENGLISH_NGRAM = 3
# Per-lexicon cache of matched texts; bounded so a long-running process stays small.
MATCH_CACHE_SIZE = 50_000

# Term kinds with a meaning of their own: a brand names the domains of its goods; a merchandise word
# ("T恤", "tote") marks a community's own goods when the product also names the community.
BRAND = "brand"
MERCH = "merch"
# Traditional Chinese (Taiwan phrases such as 軟體, 腳踏車 included), then Hong Kong variants, to Simplified.
SCRIPT_CONFIGS = ("tw2sp", "hk2s")
SCRIPT_CACHE_SIZE = 65_536

_CJK = re.compile(r"[\u3400-\u9fff]")
_ENGLISH_WORD = re.compile(r"[a-z0-9][a-z0-9+#']*(?:-[a-z0-9+#']+)*")

_tokenizer_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_words_added: set[str] = set()

Weights = Mapping[str, float]


@dataclass(frozen=True)
class Domain:
    """A field of interest and trust: finance, running, tea, ...

    ``universal`` marks domains every community's audience buys from (its own
    events, memberships, consulting): they neither match nor mismatch by themselves.
    """

    key: str
    name_zh: str
    name_en: str
    universal: bool = False


_converters: tuple[opencc.OpenCC, ...] | None = None
_script_cache: dict[str, str] = {}


def simplified(text: str) -> str:
    """Traditional Chinese (and Taiwan / Hong Kong wording) as Simplified: 軟體 -> 软件, 腳踏車 -> 自行车.

    Text without Chinese is returned as it is; results are cached per text (a conversion costs
    tens of microseconds, a cached one a dict lookup).
    """
    global _converters
    if not _CJK.search(text):
        return text
    cached = _script_cache.get(text)
    if cached is not None:
        return cached
    if _converters is None:
        _converters = tuple(opencc.OpenCC(config) for config in SCRIPT_CONFIGS)
    converted = text
    for converter in _converters:
        converted = converter.convert(converted)
    if len(_script_cache) >= SCRIPT_CACHE_SIZE:
        _script_cache.clear()
    _script_cache[text] = converted
    return converted


_normal_cache: dict[str, str] = {}


def normalise(text: str) -> str:
    """Full-width to half-width, Simplified script and lower case: 'ＧＰＳ' meets 'gps', 單車 meets 单车.

    Cached per text, like ``simplified``.
    """
    cached = _normal_cache.get(text)
    if cached is None:
        cached = simplified(unicodedata.normalize("NFKC", text)).lower().strip()
        if len(_normal_cache) >= SCRIPT_CACHE_SIZE:
            _normal_cache.clear()
        _normal_cache[text] = cached
    return cached


def _shared_tokenizer() -> jieba.Tokenizer:
    """One jieba tokenizer per process: loading its dictionary takes most of a second."""
    global _tokenizer
    with _tokenizer_lock:
        if _tokenizer is None:
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            _tokenizer = tokenizer
        return _tokenizer


def _teach_tokenizer(words: Iterable[str]) -> jieba.Tokenizer:
    """Add lexicon terms as jieba user words so they come out as whole tokens."""
    tokenizer = _shared_tokenizer()
    with _tokenizer_lock:
        for word in words:
            if word not in _words_added:
                tokenizer.add_word(word)
                _words_added.add(word)
    return tokenizer


# Endings of a doer and the endings of the activity or field it does: baker -> baking,
# investor -> investing, photographer -> photography, cyclist -> cycling, guitarist -> guitar.
AGENT_ENDINGS = (("er", ("ing", "y")), ("or", ("ing",)), ("ist", ("ing", "", "o", "y")))
MIN_AGENT_STEM = 3


def _activities(word: str) -> list[str]:
    """What the doer ``word`` (the last word of a phrase) does: runner -> running, angler -> angling.

    Only the activity or field is tried, never the bare stem of an -er word (corner is not corn).
    """
    head, _, last = word.rpartition(" ")
    prefix = head + " " if head else ""
    found = []
    for ending, activities in AGENT_ENDINGS:
        stem = last[: -len(ending)]
        if last.endswith(ending) and len(stem) >= MIN_AGENT_STEM:
            found.extend(prefix + stem + activity for activity in activities)
    return found


def _add(into: dict[str, float], domains: Mapping[str, float], factor: float) -> None:
    for key, weight in domains.items():
        into[key] = into.get(key, 0.0) + weight * factor


@dataclass(frozen=True, eq=False)
class Lexicon:
    """Domains, their terms, category-to-audience mapping and audience relations.

    A term may carry several senses (domains): 苹果 the phone brand and the fruit, Python the
    language and the snakeskin. ``terms`` keeps them all; the engine reads a word in its context.
    Compared and hashed by identity, so it can key per-lexicon caches.
    """

    domains: Mapping[str, Domain]
    terms: Mapping[str, Mapping[str, float]]  # normalised term -> {domain: weight}
    categories: Mapping[str, Mapping[str, float]]  # category path -> {domain: weight}
    relations: Mapping[str, Mapping[str, float]]  # source domain -> {target domain: weight}
    max_term_length: int = 1
    brands: frozenset[str] = frozenset()  # terms that name a brand (of the goods of their domains)
    # term -> the domains it names as a brand: one maker's goods reach all of them at once (Nike:
    # fashion, running, fitness, ball sports), so the engine reads them as one sense.
    brand_domains: Mapping[str, frozenset[str]] = field(default_factory=dict)
    merch: frozenset[str] = frozenset()  # merchandise words: 文化衫, 帆布袋, sticker, ...
    _cache: dict[str, dict[str, float]] = field(default_factory=dict, compare=False, repr=False)
    _hits_cache: dict[str, tuple[tuple[str, float], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _sense_cache: dict[str, tuple[frozenset[str], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lexicon:
        """Build from the JSON shape of ``trust/data/lexicon.json`` (or the same rows from the DB)."""
        domains: dict[str, Domain] = {}
        terms: dict[str, dict[str, float]] = {}
        brands: dict[str, set[str]] = {}
        merch: set[str] = set()
        for row in data.get("domains", ()):
            key = row["key"]
            domains[key] = Domain(
                key, row.get("name_zh", key), row.get("name_en", key), bool(row.get("universal", False))
            )
            for term_row in row.get("terms", ()):
                term = normalise(term_row["term"])
                if not term:
                    continue
                kind = term_row.get("kind", "synonym")
                if kind == MERCH:  # says "goods of a community", not which audience buys them
                    merch.add(term)
                    continue
                if kind == BRAND:
                    brands.setdefault(term, set()).add(key)
                weight = float(term_row.get("weight", 1.0))
                by_domain = terms.setdefault(term, {})
                by_domain[key] = max(weight, by_domain.get(key, 0.0))
        categories: dict[str, dict[str, float]] = {}
        for row in data.get("categories", ()):
            mapped = {
                d["domain"]: float(d.get("weight", 1.0))
                for d in row.get("domains", ())
                if d["domain"] in domains
            }
            if mapped:
                categories[row["path"].strip()] = mapped
        relations: dict[str, dict[str, float]] = {}
        for row in data.get("relations", ()):
            if row["source"] in domains and row["target"] in domains:
                relations.setdefault(row["source"], {})[row["target"]] = float(row.get("weight", 0.5))
        chinese = [t for t in (*terms, *merch) if _CJK.search(t) and len(t) >= 2]
        _teach_tokenizer(chinese)
        longest = max((len(t) for t in chinese if t in terms), default=1)
        return cls(
            domains,
            terms,
            categories,
            relations,
            longest,
            brands=frozenset(brands),
            brand_domains={term: frozenset(keys) for term, keys in brands.items()},
            merch=frozenset(merch),
        )

    @classmethod
    def load(cls, path: Path | str = DEFAULT_LEXICON_PATH) -> Lexicon:
        """The lexicon shipped with the code (the seed for the admin-edited tables)."""
        with Path(path).open(encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))

    def name(self, domain: str, lang: str = "zh") -> str:
        item = self.domains.get(domain)
        if item is None:
            return domain
        return item.name_zh if lang == "zh" else item.name_en

    def is_universal(self, domain: str) -> bool:
        item = self.domains.get(domain)
        return bool(item and item.universal)

    def segment(self, text: str) -> list[str]:
        """Search-mode tokens: a long term yields its parts too (投资理财 -> 投资, 理财, 投资理财)."""
        tokenizer = _shared_tokenizer()
        return [t for t in tokenizer.cut_for_search(normalise(text), HMM=False) if t.strip()]

    def segment_plain(self, text: str) -> list[str]:
        """Plain tokens in order (no search-mode parts): 汉服同袍 -> 汉服, 同袍."""
        tokenizer = _shared_tokenizer()
        return [t for t in tokenizer.cut(normalise(text), HMM=False) if t.strip()]

    def term_hits(self, text: str) -> list[tuple[str, float]]:
        """Lexicon terms found in ``text`` with a confidence factor (1.0 whole token, less inside one)."""
        clean = normalise(text)
        if not clean:
            return []
        hits = self._english_hits(clean)
        if _CJK.search(clean):
            hits.extend(self._chinese_hits(clean))
        return hits

    def hits(self, text: str) -> tuple[tuple[str, float], ...]:
        """``term_hits`` cached per text: what the engine reads, sense by sense, in context."""
        cached = self._hits_cache.get(text)
        if cached is not None:
            return cached
        found = tuple(self.term_hits(text))
        if len(self._hits_cache) >= MATCH_CACHE_SIZE:
            self._hits_cache.clear()
        self._hits_cache[text] = found
        return found

    def match_text(self, text: str) -> dict[str, float]:
        """Domain weights of a piece of text, every sense of every word counted. Cached per text."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        found: dict[str, float] = {}
        for term, factor in self.hits(text):
            _add(found, self.terms[term], factor)
        if len(self._cache) >= MATCH_CACHE_SIZE:
            self._cache.clear()
        self._cache[text] = found
        return found

    def sense_groups(self, term: str) -> tuple[frozenset[str], ...]:
        """The topical domains of ``term`` grouped into senses: domains near each other (a relation
        or a shared neighbour) are one sense (自驾: cars and outdoor; 瑜伽: fitness and mind), the
        others are different senses (苹果: phones, fruit)."""
        cached = self._sense_cache.get(term)
        if cached is not None:
            return cached
        remaining = {k for k in self.terms.get(term, {}) if not self.is_universal(k)}
        groups: list[frozenset[str]] = []
        while remaining:
            group = {remaining.pop()}
            grew = True
            while grew:
                linked = {k for k in remaining if any(self._near(k, g) for g in group)}
                grew = bool(linked)
                group |= linked
                remaining -= linked
            groups.append(frozenset(group))
        self._sense_cache[term] = found = tuple(groups)
        return found

    def _near(self, a: str, b: str) -> bool:
        """Related either way, or through a shared neighbour (yoga: fitness and mind, both near health)."""
        near_a = {*self.relations.get(a, {}), *(s for s, t in self.relations.items() if a in t)}
        near_b = {*self.relations.get(b, {}), *(s for s, t in self.relations.items() if b in t)}
        direct = max(self.relations.get(a, {}).get(b, 0.0), self.relations.get(b, {}).get(a, 0.0))
        return direct >= SENSE_RELATION or bool(near_a & near_b)

    def merch_words(self, text: str) -> list[str]:
        """Merchandise words in ``text`` (a Chinese one anywhere, an English one as a word)."""
        clean = normalise(text)
        words = set(_ENGLISH_WORD.findall(clean))
        found = []
        for word in self.merch:
            if _CJK.search(word):
                if word in clean:
                    found.append(word)
            elif word in words or (word + "s") in words or (" " in word and word in clean):
                found.append(word)
        return found

    def category_domains(self, path: str) -> dict[str, float]:
        """Domains whose audiences buy a category; unknown paths fall back to siblings, then to words."""
        path = path.strip()
        if path in self.categories:
            return dict(self.categories[path])
        if not path:
            return {}
        parent = path.split("/")[0] + "/"
        siblings = [m for p, m in self.categories.items() if p.startswith(parent)]
        if siblings:
            merged: dict[str, float] = {}
            for mapped in siblings:
                for key, weight in mapped.items():
                    merged[key] = max(merged.get(key, 0.0), weight * 0.8)
            words = self.match_text(path.replace("/", " "))
            _add(merged, words, 0.5)
            return merged
        return self.match_text(path.replace("/", " "))

    def _english_hits(self, clean: str) -> list[tuple[str, float]]:
        words = _ENGLISH_WORD.findall(clean)
        hits: list[tuple[str, float]] = []
        i = 0
        while i < len(words):
            for size in range(min(MAX_ENGLISH_NGRAM, len(words) - i), 0, -1):
                term = self._english_term(" ".join(words[i : i + size]))
                if term is not None:
                    hits.append((term, 1.0))
                    i += size
                    break
            else:
                i += 1
        return hits

    def _english_term(self, phrase: str) -> str | None:
        """The phrase itself, its singular (shoes -> shoe, berries -> berry) or, for a doer, the
        activity (bakers -> baking, anglers -> angling, cyclists -> cycling), if a term."""
        singulars = [phrase]
        if phrase.endswith("ies"):
            singulars.append(phrase[:-3] + "y")
        if phrase.endswith("es"):
            singulars.append(phrase[:-2])
        if phrase.endswith("s"):
            singulars.append(phrase[:-1])
        for candidate in (*singulars, *(a for s in singulars for a in _activities(s))):
            if candidate in self.terms and not _CJK.search(candidate):
                return candidate
        return None

    def _chinese_hits(self, clean: str) -> list[tuple[str, float]]:
        """Whole jieba tokens first; inside longer unknown tokens, longest terms left to right.

        A one-character term glued to other characters (猫 of 猫山王榴莲 or 天猫精灵, split off an
        unknown name) is more likely part of a name than the word itself: it counts
        ``GLUED_CHARACTER_FACTOR``; standing alone (猫 粮, "猫") it counts fully.
        """
        tokenizer = _shared_tokenizer()
        tokens = list(tokenizer.cut(clean, HMM=False))
        hits: list[tuple[str, float]] = []
        for index, token in enumerate(tokens):
            if not _CJK.search(token):
                continue
            if token in self.terms:
                glued = len(token) == 1 and any(
                    0 <= j < len(tokens) and _CJK.search(tokens[j]) for j in (index - 1, index + 1)
                )
                hits.append((token, GLUED_CHARACTER_FACTOR if glued else 1.0))
            elif len(token) >= 3:
                hits.extend((term, INNER_MATCH_FACTOR) for term in self._inner_terms(token))
        return hits

    def _inner_terms(self, token: str) -> list[str]:
        found: list[str] = []
        i = 0
        while i < len(token) - 1:
            for size in range(min(self.max_term_length, len(token) - i), 1, -1):
                piece = token[i : i + size]
                if piece in self.terms:
                    found.append(piece)
                    i += size
                    break
            else:
                i += 1
        return found
