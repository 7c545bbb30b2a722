"""Audience match and domain trust: does a product fit a community, and is the trust earned?

Pure Python on plain data classes, so the admin, the API, the batch job and the
``assess_fit`` command all run this one code path. Two numbers per pair:

* ``audience_match``: how much this community's audience buys from the product's
  domains. The product's domains come from its category (the lexicon's
  category-to-audience mapping) and its words; the audience's from declared
  attributes, name, mission, description, members' interests, what members buy
  and re-buy, and the community's content.
* ``trust``: trust earned in those domains. A prior (moderately high in the
  declared domains and those a broad share of members care about, low elsewhere)
  moved up by professional content and repurchase, down by refunds and one-off buying.

``score = audience_match * (TRUST_FLOOR + (1 - TRUST_FLOOR) * trust)``: fame
alone sells a little, so low trust cuts the score but never to zero.

Text is read as Simplified Chinese whatever its script, and each word in the sense
its context (the category, the other words) gives it. Goods that carry the
community's own name are its own; a community nothing can be read from gets an
honest caution; reasons never argue against their verdict. See docs/scorer.md.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trust.scoring.lexicon import Lexicon, normalise

# Levels: score >= FIT_THRESHOLD is "fit"; below MISMATCH_THRESHOLD is "mismatch"; between is "caution".
FIT_THRESHOLD = 0.30
MISMATCH_THRESHOLD = 0.12

# How strongly each text of the community declares its domains (attributes are chosen on purpose).
ATTRIBUTE_WEIGHT = 3.0
NAME_WEIGHT = 1.5
MISSION_WEIGHT = 1.0
DESCRIPTION_WEIGHT = 1.0
# Declared affinity = (weight of domain / weight of strongest domain) ** AFFINITY_EXPONENT.
AFFINITY_EXPONENT = 0.5

# Shares of each signal in the reported profile vector ``AudienceProfile.domains``.
MIX_DECLARED = 3.0
MIX_INTERESTS = 1.5
MIX_CONTENT = 1.0
MIX_SALES = 1.5
# Members' interests: share of interest counts, confidence growing with log(count).
INTEREST_FULL_COUNT = 200
INTEREST_SHARE_GAIN = 2.0
# Interests raise the audience match; they stand for the community (a trust prior like a declared
# attribute) only when broad: many members (confidence above) and a large share of the membership.
INTEREST_BROAD_FROM = 0.20  # membership share below which an interest says nothing about standing
INTEREST_BROAD_FULL = 0.50  # share from which it stands like a declared attribute
# Content: items in a domain (an item split over domains counts fractionally).
CONTENT_ITEMS_SCALE = 2.5
CONTENT_AFFINITY = 0.7
# Sales: confidence grows with orders; repurchase and refund rates set the quality.
SALES_CONFIDENT_ORDERS = 60.0
REPURCHASE_PIVOT = 0.10  # repeat_buyers / buyers above this earns trust, below it costs trust
REPURCHASE_SPAN = 0.25
REPURCHASE_FULL = 0.30  # repurchase rate at which buying counts fully as audience evidence
REFUND_FREE = 0.03  # refund rate tolerated as normal
REFUND_SPAN = 0.15
REFUND_PENALTY = 1.5
OTHER_CATEGORY_FACTOR = 0.5  # sales in another category of the same domain count half

# Trust: prior = TRUST_BASE + (TRUST_DECLARED - TRUST_BASE) * declared affinity, then evidence.
TRUST_BASE = 0.15
TRUST_DECLARED = 0.70
TRUST_MAX = 0.95
CONTENT_TRUST_SHARE = 0.7
TRUST_FLOOR = 0.20

# Product: a domain named by the words counts at most TEXT_WEIGHT of one named by the category.
TEXT_WEIGHT = 0.9
DESCRIPTION_TEXT_FACTOR = 0.5
# A word the context cannot place (several senses, none supported by the category or the other
# words) counts this much: it cannot outvote the category. A word of one sense refines the audience
# ("跑步" T-shirt, "婴儿" shampoo) at full weight.
OFF_CATEGORY_FACTOR = 0.5
# Match = BEST_SHARE * best single domain + (1 - BEST_SHARE) * weighted average over the product's domains.
BEST_SHARE = 0.6
UNIVERSAL_AFFINITY = 0.7  # a community's own events / memberships
UNKNOWN_PRODUCT_MATCH = 0.3  # nothing in the lexicon recognises the product: say so, caution
# The community's own goods (its name on merchandise, a ticket to its own event): its audience buys
# them, on the community's standing in its own field.
OWN_GOODS_MATCH = 0.9
PRODUCT_CACHE_SIZE = 50_000  # products whose domains are kept per lexicon (a re-score reads each again)
# Bumped when the profile's meaning changes: stored profiles of another version are rebuilt.
ENGINE_VERSION = 4
# Generic words at the end of a community's name; what is left is its distinctive part.
NAME_SUFFIXES = (
    "俱乐部",
    "联合会",
    "研究会",
    "同学会",
    "校友会",
    "后援会",
    "粉丝团",
    "粉丝会",
    "书友会",
    "读书会",
    "同好会",
    "研习社",
    "交流群",
    "联盟",
    "部落",
    "小组",
    "之家",
    "社群",
    "社区",
    "圈子",
    "协会",
    "学院",
    "工作室",
    "工坊",
    "公社",
    "战队",
    "车队",
    "社",
    "会",
    "群",
    "营",
    "圈",
    "团",
    " club",
    " community",
    " society",
    " group",
    " circle",
    " collective",
    " crew",
    " fans",
)
# Names are often "place + topic + organisation word" (长沙汉服同袍会, 台中馬拉松練跑團): the members call
# it by its organisation word (同袍会, 练跑团). Places are data (trust/data/places.json).
PLACES_PATH = Path(__file__).resolve().parents[1] / "data" / "places.json"
_places_data = json.loads(PLACES_PATH.read_text(encoding="utf-8"))
PLACES = tuple(sorted(_places_data["places"], key=len, reverse=True))  # longest first: 大湾区 before 湾区
ADMINISTRATIVE_ENDINGS = tuple(_places_data["administrative_endings"])
MIN_NAME_CORE = 2  # characters of a Chinese core name (English: twice as many)
_ACRONYM = re.compile(r"(?<![A-Za-z])[A-Z][A-Z0-9]{2,7}(?![A-Za-z])")  # AFOL, NYRR: a name's own letters
_LATIN_WORD = re.compile(r"[a-z0-9]+")
_NOT_A_LETTER = re.compile(r"[\W_]+")


def _searchable(name: str) -> bool:
    """A name long or Chinese enough to be searched inside running text; a short Latin one (an
    acronym) must stand as a word of its own ("afol", not the 'afol' inside another word)."""
    return not name.isascii() or len(name) > 8


_CJK = re.compile(r"[\u3400-\u9fff]")

Weights = Mapping[str, float]


@dataclass(frozen=True)
class ContentItem:
    title: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SalesRecord:
    category: str
    orders: int
    buyers: int
    repeat_buyers: int
    refunds: int


@dataclass(frozen=True)
class CommunityEvidence:
    name: str
    description: str = ""
    mission: str = ""
    attributes: tuple[str, ...] = ()
    member_interests: Mapping[str, int] = field(default_factory=dict)
    content: tuple[ContentItem, ...] = ()
    sales: tuple[SalesRecord, ...] = ()


@dataclass(frozen=True)
class ProductInput:
    title: str
    description: str = ""
    category: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SalesSignal:
    """One sales record read as evidence: rates, quality in [-1, 1] and confidence in [0, 1]."""

    category: str
    domains: Weights
    orders: int
    repurchase_rate: float
    refund_rate: float
    quality: float
    confidence: float


@dataclass(frozen=True)
class AudienceProfile:
    """What a community's audience buys and where its trust lies.

    ``domains``: weighted vector over all signals, summing to 1 (for display and
    analytics). ``affinity``: per domain in [0, 1], how much the audience buys from
    it (what ``assess`` matches against). ``declared``: the part of affinity the
    community declares itself. ``trust``: per-domain trust from all evidence.
    """

    domains: Weights
    affinity: Weights = field(default_factory=dict)
    declared: Weights = field(default_factory=dict)
    trust: Weights = field(default_factory=dict)
    content_counts: Weights = field(default_factory=dict)
    interests: Weights = field(default_factory=dict)
    sales: tuple[SalesSignal, ...] = ()
    attributes: tuple[str, ...] = ()
    name: str = ""
    standing: Weights = field(default_factory=dict)
    interest_shares: Weights = field(default_factory=dict)  # of the membership (estimated)
    interest_members: Weights = field(default_factory=dict)
    own_names: tuple[str, ...] = ()
    readable: bool = True


@dataclass(frozen=True)
class FitResult:
    audience_match: float
    trust: float
    score: float
    level: str  # "fit" | "caution" | "mismatch"
    warning: bool
    reasons_zh: tuple[str, ...]
    reasons_en: tuple[str, ...]
    product_domains: Weights


# ---------------------------------------------------------------- helpers


def _clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return max(low, min(high, value))


def _frozen(weights: Mapping[str, float]) -> Weights:
    """Rounded, strongest first; a plain dict so profiles pickle into caches and serialise to JSON."""
    return {k: round(v, 4) for k, v in sorted(weights.items(), key=lambda kv: -kv[1])}


def _scaled(weights: Mapping[str, float], total: float) -> dict[str, float]:
    """Spread ``total`` over the weights in proportion (a text declares one unit, however many words)."""
    mass = sum(weights.values())
    return {k: total * v / mass for k, v in weights.items()} if mass > 0 else {}


def _by_max(weights: Mapping[str, float]) -> dict[str, float]:
    top = max(weights.values(), default=0.0)
    return {k: v / top for k, v in weights.items()} if top > 0 else {}


def _accumulate(into: dict[str, float], weights: Mapping[str, float]) -> None:
    for key, value in weights.items():
        into[key] = into.get(key, 0.0) + value


def _topical(lexicon: Lexicon, weights: Mapping[str, float]) -> dict[str, float]:
    """Drop universal domains: every community runs events; that says nothing about its audience."""
    return {k: v for k, v in weights.items() if not lexicon.is_universal(k)}


# ---------------------------------------------------------------- words in context


Hits = tuple[tuple[str, float], ...]


def _context(lexicon: Lexicon, base: Mapping[str, float], hit_lists: Iterable[tuple[Hits, float]]) -> dict:
    """What the surroundings say: ``base`` (a category's audiences, a community's attributes) and
    every word with a single topical sense. Not spread along relations: a sense is a group of
    near domains already (``Lexicon.sense_groups``)."""
    context = dict(_topical(lexicon, base))
    for hits, factor in hit_lists:
        for term, hit_factor in hits:
            senses = _topical(lexicon, lexicon.terms[term])
            if len(senses) == 1:
                _accumulate(context, {k: v * hit_factor * factor for k, v in senses.items()})
    return context


def _senses(lexicon: Lexicon, term: str, context: Mapping[str, float]) -> tuple[Mapping[str, float], float]:
    """The senses of ``term`` its context supports, and how much the word counts.

    苹果 among phones is the brand, among fruit the fruit: a word whose domains fall into unrelated
    senses (``Lexicon.sense_groups``) keeps those its context (the category, the words of one
    sense around it) supports. A word with several senses none of which the context supports is
    probably meant another way (a python-skin bag): it counts ``OFF_CATEGORY_FACTOR``, so it cannot
    outvote the category. Universal senses (an event) always stay.
    """
    senses = lexicon.terms[term]
    groups = lexicon.sense_groups(term)
    if len(groups) < 2 or not context:
        return senses, 1.0
    supported = [g for g in groups if any(context.get(k, 0.0) > 0 for k in g)]
    if not supported:
        return senses, OFF_CATEGORY_FACTOR
    keep = frozenset().union(*supported)
    maker = lexicon.brand_domains.get(term, frozenset())
    if keep & maker:  # one maker's goods: a Nike shoe under 鞋靴 is running gear as well as fashion
        keep |= maker
    return {k: v for k, v in senses.items() if k in keep or lexicon.is_universal(k)}, 1.0


def _read(lexicon: Lexicon, hits: Hits, context: Mapping[str, float]) -> dict[str, float]:
    """Domain weights of one text, each word in the sense its context gives it."""
    found: dict[str, float] = {}
    for term, factor in hits:
        senses, weight_factor = _senses(lexicon, term, context)
        for key, weight in senses.items():
            found[key] = found.get(key, 0.0) + weight * factor * weight_factor
    return found


def _spread(lexicon: Lexicon, affinity: Mapping[str, float]) -> dict[str, float]:
    """Audiences of one domain also buy from its neighbours (runners buy fitness goods)."""
    spread = dict(affinity)
    for source, strength in affinity.items():
        for target, weight in lexicon.relations.get(source, {}).items():
            spread[target] = max(spread.get(target, 0.0), strength * weight)
    return spread


def _sales_signal(lexicon: Lexicon, record: SalesRecord) -> SalesSignal:
    """Repurchase above the pivot earns trust; one-off buying and refunds cost it."""
    orders = max(record.orders, 0)
    buyers = max(record.buyers, 1)
    repurchase = _clamp(record.repeat_buyers / buyers)
    refund = _clamp(record.refunds / orders) if orders else 0.0
    repurchase_signal = _clamp((repurchase - REPURCHASE_PIVOT) / REPURCHASE_SPAN, -1.0, 1.0)
    refund_signal = REFUND_PENALTY * _clamp((refund - REFUND_FREE) / REFUND_SPAN)
    quality = _clamp(repurchase_signal - refund_signal, -1.0, 1.0)
    confidence = 1.0 - math.exp(-orders / SALES_CONFIDENT_ORDERS)
    return SalesSignal(
        record.category,
        _by_max(lexicon.category_domains(record.category)),
        orders,
        repurchase,
        refund,
        quality,
        confidence,
    )


def _buying_affinity(signal: SalesSignal) -> float:
    """Members who buy, and buy again, show what the audience wants; refunds show it does not."""
    rebuy = 0.4 + 0.6 * _clamp(signal.repurchase_rate / REPURCHASE_FULL)
    kept = 1.0 - _clamp((signal.refund_rate - REFUND_FREE) / REFUND_SPAN)
    return signal.confidence * rebuy * kept


# ---------------------------------------------------------------- profile


def build_profile(lexicon: Lexicon, evidence: CommunityEvidence) -> AudienceProfile:
    """Weigh every signal about the community once, so each ``assess`` is a few dict lookups.

    Every text is read in the context of all the others (a fan club called 米粉 whose attributes
    say 小米 and 数码 is about phones, not rice noodles); Traditional Chinese is read as Simplified.
    """
    texts = [(attribute, ATTRIBUTE_WEIGHT) for attribute in evidence.attributes]
    texts += [
        (text, weight)
        for text, weight in (
            (evidence.name, NAME_WEIGHT),
            (evidence.mission, MISSION_WEIGHT),
            (evidence.description, DESCRIPTION_WEIGHT),
        )
        if text
    ]
    hits = [(lexicon.hits(text), weight) for text, weight in texts]
    context = _context(lexicon, {}, hits)
    declared_raw: dict[str, float] = {}
    for text_hits, weight in hits:
        _accumulate(declared_raw, _scaled(_topical(lexicon, _read(lexicon, text_hits, context)), weight))
    declared = _spread(lexicon, {k: v**AFFINITY_EXPONENT for k, v in _by_max(declared_raw).items()})

    interest_affinity, interest_shares, interest_standing, member_shares, members = _interests(
        lexicon, evidence.member_interests
    )
    content_counts = _content_counts(lexicon, evidence.content, context)
    content_affinity = {
        k: CONTENT_AFFINITY * (1.0 - math.exp(-n / CONTENT_ITEMS_SCALE)) for k, n in content_counts.items()
    }
    signals = tuple(_sales_signal(lexicon, record) for record in evidence.sales)
    sales_affinity: dict[str, float] = {}
    for signal in signals:
        strength = _buying_affinity(signal)
        for key, weight in _topical(lexicon, signal.domains).items():
            sales_affinity[key] = max(sales_affinity.get(key, 0.0), weight * strength)

    observed: dict[str, float] = dict(declared)
    for channel in (interest_affinity, content_affinity, sales_affinity):
        for key, value in channel.items():
            observed[key] = max(observed.get(key, 0.0), value)
    affinity = _spread(lexicon, observed)
    standing = dict(declared)
    for key, value in _spread(lexicon, interest_standing).items():
        standing[key] = max(standing.get(key, 0.0), value)

    mixed: dict[str, float] = {}
    for part, weight in (
        (declared_raw, MIX_DECLARED),
        (interest_shares, MIX_INTERESTS),
        (content_counts, MIX_CONTENT),
        (sales_affinity, MIX_SALES),
    ):
        _accumulate(mixed, _scaled(part, weight))
    trust = {key: _domain_trust(standing, content_counts, signals, key, category=None) for key in affinity}
    return AudienceProfile(
        domains=_frozen(_scaled(mixed, 1.0)),
        affinity=_frozen(affinity),
        declared=_frozen(declared),
        trust=_frozen(trust),
        content_counts=_frozen(content_counts),
        interests=_frozen(interest_affinity),
        sales=signals,
        attributes=tuple(evidence.attributes),
        name=evidence.name,
        standing=_frozen(standing),
        interest_shares=_frozen(member_shares),
        interest_members=_frozen(members),
        own_names=_own_names(lexicon, evidence.name),
        readable=any(v > 0 for v in affinity.values()),
    )


def _interests(lexicon: Lexicon, interests: Mapping[str, int]) -> tuple[dict[str, float], ...]:
    """Affinity (a domain many members name is bought by the audience), shares of all interests,
    standing, and each domain's members (with their share of the estimated membership).

    Standing is the part of interests that speaks for the community like an attribute: only a
    broad signal has any: many members (``INTEREST_FULL_COUNT``) and a large share of the
    membership. Members name several interests each, so the membership is estimated by the
    most-named interest (at least that many members): an interest held by half as many members
    as the main one is broad.
    """
    total = sum(max(int(c), 0) for c in interests.values())
    if total <= 0:
        return {}, {}, {}, {}, {}
    context = _context(
        lexicon, {}, [(lexicon.hits(tag), 1.0) for tag in interests]
    )  # tags explain each other
    counts: dict[str, float] = {}
    members: dict[str, float] = {}
    for tag, count in interests.items():
        found = _topical(lexicon, _read(lexicon, lexicon.hits(tag), context))
        _accumulate(counts, _scaled(found, max(int(count), 0)))
        _accumulate(members, {k: v * max(int(count), 0) for k, v in _by_max(found).items()})
    shares = {k: v / total for k, v in counts.items()}
    confidence = _clamp(math.log1p(total) / math.log1p(INTEREST_FULL_COUNT))
    # Members who name no interest are not counted anywhere, so the counts alone cannot show a share
    # of a small membership: 65 colleagues who like wine may be all of a group or a sliver of it. The
    # membership is at least the most-named interest and at least INTEREST_FULL_COUNT (the count
    # from which interests speak with full confidence), so a handful naming one interest is not broad.
    membership = max(max(int(c), 0) for c in interests.values())
    membership = max(membership, max(members.values(), default=0.0), INTEREST_FULL_COUNT)
    affinity: dict[str, float] = {}
    standing: dict[str, float] = {}
    for key, count in members.items():
        share = _clamp(count / membership)
        affinity[key] = confidence * _clamp(INTEREST_SHARE_GAIN * share)
        many = _clamp(math.log1p(count) / math.log1p(INTEREST_FULL_COUNT))
        broad = _clamp((share - INTEREST_BROAD_FROM) / (INTEREST_BROAD_FULL - INTEREST_BROAD_FROM))
        if many * broad > 0:
            standing[key] = many * broad
    member_shares = {k: _clamp(v / membership) for k, v in members.items()}
    return affinity, shares, standing, member_shares, members


def _content_counts(
    lexicon: Lexicon, content: Iterable[ContentItem], context: Mapping[str, float]
) -> dict[str, float]:
    """Items per domain: an item counts fully for its main subject and, relative to it, for the
    other domains it names (a tea article that mentions children is a whole tea article)."""
    counts: dict[str, float] = {}
    for item in content:
        found: dict[str, float] = {}
        for text in (item.title, *item.tags):
            if text:
                _accumulate(found, _read(lexicon, lexicon.hits(text), context))
        _accumulate(counts, _by_max(_topical(lexicon, found)))
    return counts


def _own_names(lexicon: Lexicon, name: str) -> tuple[str, ...]:
    """The community's name, its distinctive parts and its acronyms (AFOL), as they appear in
    product text.

    Distinctive parts: the name without a leading place (长沙汉服同袍会 -> 汉服同袍会), without its
    generic ending (一壶茶社 -> 一壶茶) and its organisation word: what is left of the name after the
    place and the topic words, with its ending (汉服同袍会 -> 同袍会, 马拉松练跑团 -> 练跑团). A part
    that is only a domain word (跑步 of 跑步俱乐部, 跑团, UX) or only an ending names a field or a
    kind of group, not this community.
    """
    full = _compact(name)
    if not full:
        return ()
    names = [full]
    local = _without_place(full)
    for candidate in (
        local,
        _without_suffix(full),
        _without_suffix(local),
        _organisation_word(lexicon, local),
    ):
        if candidate and candidate not in names and _distinctive(lexicon, candidate):
            names.append(candidate)
    for acronym in _ACRONYM.findall(unicodedata.normalize("NFKC", name)):
        if acronym.lower() not in lexicon.terms and acronym.lower() != full:
            names.append(acronym.lower())
    return tuple(names)


def _suffix_of(name: str) -> str:
    for suffix in NAME_SUFFIXES:
        suffix = _compact(suffix)
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return ""


def _without_suffix(name: str) -> str:
    return name[: len(name) - len(_suffix_of(name))]


def _distinctive(lexicon: Lexicon, name: str) -> bool:
    """Long enough, and neither a domain word nor a domain word with a generic ending."""
    core = _without_suffix(name)
    minimum = MIN_NAME_CORE if _CJK.search(core) else 2 * MIN_NAME_CORE
    if len(core) < minimum or core in lexicon.terms or name in lexicon.terms:
        return False
    local = _without_place(core, keep=0)  # 北京 of 北京读书会, 深圳摄影 of 深圳摄影协会: a place, a field
    return bool(local) and local not in lexicon.terms


def _without_place(name: str, keep: int = MIN_NAME_CORE) -> str:
    """长沙汉服同袍会 -> 汉服同袍会; 广东深圳市摄影协会 -> 摄影协会 (places as data, each stripped while
    more than ``keep`` characters are left)."""
    rest = name
    while True:
        place = next((p for p in PLACES if rest.startswith(p) and len(rest) - len(p) > keep), "")
        if not place and keep == 0:
            place = next((p for p in PLACES if rest == p), "")
        if not place:
            return rest
        rest = rest[len(place) :]
        ending = next((e for e in ADMINISTRATIVE_ENDINGS if rest.startswith(e)), "")
        rest = rest[len(ending) :]


def _organisation_word(lexicon: Lexicon, name: str) -> str:
    """What members call the group: the name after its leading topic words, with its organisation
    ending (汉服同袍会 -> 同袍会, 马拉松练跑团 -> 练跑团); "" when nothing distinctive is left."""
    suffix = _suffix_of(name)
    if not suffix or not _CJK.search(name):
        return ""
    rest = name
    for token in lexicon.segment_plain(name[: -len(suffix)]):
        if token not in lexicon.terms or len(rest) - len(token) - len(suffix) < MIN_NAME_CORE:
            break
        rest = rest[len(token) :]
    return rest if rest != name else ""


def _compact(text: str) -> str:
    """Normalised, without spaces and punctuation: how a name is compared with product text."""
    return _NOT_A_LETTER.sub("", normalise(text))


def _domain_trust(
    standing: Weights,
    content_counts: Weights,
    sales: Iterable[SalesSignal],
    domain: str,
    category: str | None,
) -> float:
    """Prior from what the community stands for (declared, or broad members' interests), moved by
    content and by sales in the domain.

    Sales in the product's own category count fully, other categories of the same domain half.
    """
    prior = TRUST_BASE + (TRUST_DECLARED - TRUST_BASE) * standing.get(domain, 0.0)
    content = 1.0 - math.exp(-content_counts.get(domain, 0.0) / CONTENT_ITEMS_SCALE)
    weighted_orders = 0.0
    weighted_quality = 0.0
    for signal in sales:
        own_category = category is not None and signal.category == category
        # Sales of the product's own category are evidence about these very goods, whichever of the
        # product's domains it reaches the audience through (handmade soap: arts as well as beauty).
        share = 1.0 if own_category else signal.domains.get(domain, 0.0)
        if share <= 0:
            continue
        factor = 1.0 if category is None or own_category else OTHER_CATEGORY_FACTOR
        weighted_orders += share * factor * signal.orders
        weighted_quality += share * factor * signal.orders * signal.quality
    sales = 0.0
    if weighted_orders > 0:
        confidence = 1.0 - math.exp(-weighted_orders / SALES_CONFIDENT_ORDERS)
        sales = confidence * weighted_quality / weighted_orders
    evidence = _clamp(CONTENT_TRUST_SHARE * content + sales, -1.0, 1.0)
    if evidence >= 0:
        return prior + (TRUST_MAX - prior) * evidence
    return prior * (1.0 + evidence)


# ---------------------------------------------------------------- assessment


_product_cache: weakref.WeakKeyDictionary[Lexicon, dict[ProductInput, dict[str, float]]] = (
    weakref.WeakKeyDictionary()
)


def product_domains(lexicon: Lexicon, product: ProductInput) -> dict[str, float]:
    """Which audiences buy the product, each in [0, 1] (cached per lexicon and product; do not mutate).

    The category says which audiences buy it; title, tags and description add the audiences
    they name ("婴儿" shampoo, "跑步" T-shirt). Each source is evidence on its own, so a domain
    takes the larger of the two. A word is read in the sense its category and the rest of the
    text support (小米 among phones is the brand, among grains the millet); a word of several
    senses none of which fits counts less, so it cannot outvote the category. Words that only say
    "event" or "membership" do not outweigh words that say what the event is about.
    """
    cache = _product_cache.setdefault(lexicon, {})
    cached = cache.get(product)
    if cached is None:
        if len(cache) >= PRODUCT_CACHE_SIZE:
            cache.clear()
        cached = cache[product] = _product_domains(lexicon, product)
    return cached


def _product_domains(lexicon: Lexicon, product: ProductInput) -> dict[str, float]:
    category = _by_max(lexicon.category_domains(product.category)) if product.category else {}
    main = [lexicon.hits(text) for text in (product.title, *product.tags) if text]
    description = lexicon.hits(product.description) if product.description else ()
    context = _context(lexicon, category, [*((h, 1.0) for h in main), (description, DESCRIPTION_TEXT_FACTOR)])
    words: dict[str, float] = {}
    for hits in main:
        _accumulate(words, _read(lexicon, hits, context))
    if description:
        _accumulate(
            words,
            {k: DESCRIPTION_TEXT_FACTOR * v for k, v in _read(lexicon, description, context).items()},
        )
    topical_words = _topical(lexicon, words)
    if topical_words:
        words = topical_words
    combined = dict(category)
    if words:
        confidence = _clamp(max(words.values()))
        for key, value in _by_max(words).items():
            combined[key] = max(combined.get(key, 0.0), TEXT_WEIGHT * confidence * value)
    return _by_max(combined)


def own_goods(lexicon: Lexicon, profile: AudienceProfile, product: ProductInput, domains: Weights) -> str:
    """The community's name on its own goods: merchandise, or its own event or membership.

    Returns the name found ("" if none): the product's text names the community, and it is
    merchandise (a merchandise word) or the community's own service (an event, a membership).
    """
    if not profile.own_names:
        return ""
    fields = [text for text in (product.title, *product.tags, product.description) if text]
    compact = "".join(_compact(text) for text in fields)  # each field's normal form is cached
    words = {word for text in fields for word in _LATIN_WORD.findall(normalise(text))}
    name = next((n for n in profile.own_names if n in words or (_searchable(n) and n in compact)), "")
    if not name:
        return ""
    service = any(lexicon.is_universal(k) for k in domains) or any(
        lexicon.is_universal(k) for k in lexicon.category_domains(product.category)
    )
    return name if service or lexicon.merch_words(" ".join(fields)) else ""


@dataclass(frozen=True)
class Verdict:
    match: float
    trust: float
    level: str
    own_name: str = ""


def assess(lexicon: Lexicon, profile: AudienceProfile, product: ProductInput) -> FitResult:
    """Score one product for one community profile; explain the verdict in both languages."""
    domains = product_domains(lexicon, product)
    own = own_goods(lexicon, profile, product, domains)
    if own:
        match, contributions = OWN_GOODS_MATCH, {}
        trust = _own_standing(lexicon, profile)
    elif not profile.readable:
        match, contributions, trust = 0.0, {}, TRUST_BASE
    else:
        match, contributions = _audience_match(lexicon, profile, domains)
        trust = _product_trust(lexicon, profile, product.category, domains, contributions)
    score = _clamp(match * (TRUST_FLOOR + (1.0 - TRUST_FLOOR) * trust))
    if not own and not profile.readable:  # nothing to judge by: honest uncertainty, not a verdict
        score = (FIT_THRESHOLD + MISMATCH_THRESHOLD) / 2
    if score >= FIT_THRESHOLD:
        level = "fit"
    elif score >= MISMATCH_THRESHOLD:
        level = "caution"
    else:
        level = "mismatch"
    verdict = Verdict(match, trust, level, own)
    reasons_zh, reasons_en = _reasons(lexicon, profile, product, domains, contributions, verdict)
    return FitResult(
        round(match, 4),
        round(trust, 4),
        round(score, 4),
        level,
        level != "fit",
        reasons_zh,
        reasons_en,
        _frozen(domains),
    )


def _own_standing(lexicon: Lexicon, profile: AudienceProfile) -> float:
    """Trust in the community's own field: its standing domains, weighted by how much it stands for them."""
    weights = {
        k: v for k, v in profile.standing.items() if v >= DECLARED_LEVEL and not lexicon.is_universal(k)
    }
    if not weights:
        return TRUST_DECLARED
    total = sum(weights.values())
    return (
        sum(
            w * _domain_trust(profile.standing, profile.content_counts, profile.sales, k, None)
            for k, w in weights.items()
        )
        / total
    )


def _audience_match(
    lexicon: Lexicon, profile: AudienceProfile, domains: Mapping[str, float]
) -> tuple[float, dict[str, float]]:
    """Blend of the best-matching domain and the average over all of the product's domains.

    The best domain carries "runners buy smartwatches"; the average keeps off-audience words
    (a liquor tasting sold as an "event") from hiding behind a neutral category.
    """
    if not domains:
        return UNKNOWN_PRODUCT_MATCH, {}
    contributions: dict[str, float] = {}
    total = 0.0
    weighted = 0.0
    for key, weight in domains.items():
        if lexicon.is_universal(key):
            affinity = UNIVERSAL_AFFINITY
        else:
            affinity = profile.affinity.get(key, 0.0)
            contributions[key] = weight * affinity
        total += weight
        weighted += weight * affinity
    average = weighted / total
    if len(contributions) == 0:
        return average, contributions
    best = max(contributions.values())
    return BEST_SHARE * best + (1.0 - BEST_SHARE) * average, contributions


def _product_trust(
    lexicon: Lexicon,
    profile: AudienceProfile,
    category: str,
    domains: Mapping[str, float],
    contributions: Mapping[str, float],
) -> float:
    """Trust in the domains through which the product reaches this audience."""
    weights = {k: v for k, v in contributions.items() if v > 0}
    if sum(weights.values()) < 0.05:
        weights = {k: v for k, v in domains.items() if not lexicon.is_universal(k)}
    if not weights:  # only universal domains (a membership, an event): the community's own standing
        weights = dict(profile.standing)
    total = sum(weights.values())
    if total <= 0:
        return TRUST_BASE
    return (
        sum(
            w * _domain_trust(profile.standing, profile.content_counts, profile.sales, k, category or None)
            for k, w in weights.items()
        )
        / total
    )


# ---------------------------------------------------------------- reasons

DECLARED_LEVEL = 0.5  # declared affinity from which a domain counts as the community's own field
STRONG_MATCH = 0.45
PARTIAL_MATCH = 0.2
FEW_ORDERS_CONFIDENCE = 0.3  # below this sales confidence a record is reported as "few orders"

FOR_FIT, NEUTRAL, FOR_WARNING = 1, 0, -1


@dataclass(frozen=True)
class Reason:
    """One sentence in both languages, the way it points, and its 'despite' form for the other verdict."""

    direction: int
    zh: str
    en: str
    zh_despite: str = ""
    en_despite: str = ""


def _names(lexicon: Lexicon, keys: Iterable[str], lang: str) -> str:
    separator = ", " if lang == "en" else "、"
    return separator.join(lexicon.name(k, lang) for k in keys)


def _top(weights: Mapping[str, float], n: int, minimum: float = 0.0) -> list[str]:
    ranked = sorted(((v, k) for k, v in weights.items() if v > minimum), reverse=True)
    return [k for _, k in ranked[:n]]


def _percent(rate: float) -> str:
    return f"{rate:.1%}"


def _verdict_line(verdict: Verdict) -> tuple[str, str]:
    figures_zh = f"匹配度 {verdict.match:.2f}, 信任度 {verdict.trust:.2f}"
    figures_en = f"Audience match {verdict.match:.2f}, trust {verdict.trust:.2f}"
    if verdict.level == "fit":
        return f"{figures_zh}: 适合在本社群上架", f"{figures_en}: fits this community"
    return (
        f"{figures_zh}: 凭知名度或能少量售出, 但难以形成复购, 建议谨慎",
        f"{figures_en}: fame may sell a little, but expect no repurchase; list with care",
    )


def _reasons(
    lexicon: Lexicon,
    profile: AudienceProfile,
    product: ProductInput,
    domains: Mapping[str, float],
    contributions: Mapping[str, float],
    verdict: Verdict,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Sentences that agree with the verdict, deciding evidence first; evidence the other way only
    as "despite ..." after them; the verdict with its figures last."""
    attrs = ", ".join(profile.attributes[:4]) or profile.name or "-"
    category = product.category or product.title
    if verdict.own_name:
        reasons = [_own_goods_reason(profile, verdict)]
    elif not profile.readable:
        reasons = [
            Reason(
                FOR_WARNING,
                f"无法识别本社群的属性: 名称、简介与属性 ({attrs}) 中没有已知领域的词, "
                "无从判断这件商品与社群的关系; 请补充社群属性或人工确认",
                f"We could not read this community's attributes (no known domain in its name, description "
                f"or attributes: {attrs}), so we cannot judge these goods against it; "
                "add attributes or check by hand",
            )
        ]
    elif not domains:
        reasons = [
            Reason(
                FOR_WARNING,
                f"无法从商品类目与文字 ({category or '-'}) 识别所属领域, "
                f"请人工确认是否符合社群属性 ({attrs})",
                f"Neither the category nor the text ({category or '-'}) names a known domain; "
                f"check it against the community's attributes ({attrs})",
            )
        ]
    else:
        reasons = _evidence_reasons(
            lexicon, profile, product, domains, contributions, verdict, attrs, category
        )
    return _ordered(reasons, verdict)


def _ordered(reasons: list[Reason], verdict: Verdict) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Agreeing reasons first (the first two joined as the headline), neutral ones, then 'despite' ones."""
    agree = FOR_FIT if verdict.level == "fit" else FOR_WARNING
    first = [r for r in reasons if r.direction == agree]
    middle = [r for r in reasons if r.direction == NEUTRAL]
    against = [r for r in reasons if r.direction not in (agree, NEUTRAL) and r.zh_despite]
    zh = [r.zh for r in first] + [r.zh for r in middle] + [r.zh_despite for r in against]
    en = [r.en for r in first] + [r.en for r in middle] + [r.en_despite for r in against]
    if len(first) >= 2:
        zh[:2] = [f"{zh[0]}; {zh[1]}"]
        en[:2] = [f"{en[0]}; {en[1]}"]
    line_zh, line_en = _verdict_line(verdict)
    return (*zh, line_zh), (*en, line_en)


def _own_goods_reason(profile: AudienceProfile, verdict: Verdict) -> Reason:
    name = profile.name or verdict.own_name
    zh = f"商品名称带有本社群的名字 ({name}), 是社群自己的周边或活动, 成员为社群本身而买"
    en = (
        f"The goods carry the community's own name ({name}): its own merchandise or event, "
        "bought for the community itself"
    )
    if verdict.level == "fit":
        return Reason(FOR_FIT, zh, en)
    return Reason(
        FOR_WARNING,
        f"{zh}; 但社群在本领域的信任受损 (退款多、复购少)",
        f"{en}; but the community's trust in its own field is damaged (refunds, little repurchase)",
    )


def _evidence_reasons(
    lexicon: Lexicon,
    profile: AudienceProfile,
    product: ProductInput,
    domains: Mapping[str, float],
    contributions: Mapping[str, float],
    verdict: Verdict,
    attrs: str,
    category: str,
) -> list[Reason]:
    """The audience fit, then the evidence behind the trust figure, each pointing one way."""
    match = verdict.match
    topical = {k: v for k, v in domains.items() if not lexicon.is_universal(k)}
    product_keys = _top(topical or domains, 2, 0.2)
    via = _top(contributions, 2, 0.15)
    # A membership or an event with no topic of its own stands on the community's own field.
    keys = via or (product_keys if topical else _top(profile.standing, 2, DECLARED_LEVEL))
    declared_field = any(profile.declared.get(k, 0.0) >= DECLARED_LEVEL for k in keys)
    zh_dom, en_dom = _names(lexicon, product_keys, "zh"), _names(lexicon, product_keys, "en")
    related = [s for s in profile.sales if s.orders > 0 and s.category == product.category] or [
        s
        for s in profile.sales
        if s.orders > 0 and any(s.domains.get(k, 0.0) >= DECLARED_LEVEL for k in keys)
    ]
    reasons: list[Reason] = []
    if match >= STRONG_MATCH and (declared_field or not via):
        zh = f"商品类目 {category} ({zh_dom}) 与社群属性 ({attrs}) 相符"
        en = f"Category {category} ({en_dom}) fits the community's attributes ({attrs})"
        reasons.append(Reason(FOR_FIT, zh, en, f"尽管{zh}", f"Despite: {en[0].lower()}{en[1:]}"))
    elif match >= STRONG_MATCH:
        zh_channels, en_channels = _channels(profile, keys, related)
        zh = f"商品类目 {category} ({zh_dom}) 不在社群属性 ({attrs}) 之内, 但{zh_channels}显示成员买这类商品"
        en = (
            f"Category {category} ({en_dom}) is outside the community's attributes ({attrs}), "
            f"but {en_channels} show members buy it"
        )
        reasons.append(
            Reason(
                FOR_FIT,
                zh,
                en,
                f"尽管{zh_channels}显示成员也买 {category} ({zh_dom})",
                f"Despite {en_channels} showing members also buy {category} ({en_dom})",
            )
        )
    elif match >= PARTIAL_MATCH:
        through_zh = f", 经由 {_names(lexicon, via, 'zh')}" if via else ""
        through_en = f", through {_names(lexicon, via, 'en')}" if via else ""
        if verdict.level == "fit":
            reasons.append(
                Reason(
                    FOR_FIT,
                    f"商品类目 {category} ({zh_dom}) 与社群属性 ({attrs}) 相关{through_zh}",
                    f"Category {category} ({en_dom}) is related to the community's attributes "
                    f"({attrs}){through_en}",
                )
            )
        else:
            reasons.append(
                Reason(
                    FOR_WARNING,
                    f"商品类目 {category} ({zh_dom}) 与社群属性 ({attrs}) 仅部分相关{through_zh}",
                    f"Category {category} ({en_dom}) is only loosely related to the community's attributes "
                    f"({attrs}){through_en}",
                )
            )
    else:
        reasons.append(
            Reason(
                FOR_WARNING,
                f"社群属性 ({attrs}) 与商品类目 {category} ({zh_dom}) 无关联",
                f"The community's attributes ({attrs}) do not cover category {category} ({en_dom})",
            )
        )
    reasons.extend(_trust_reasons(lexicon, profile, keys, related, declared_field))
    return reasons


def _channels(profile: AudienceProfile, keys: list[str], related: list[SalesSignal]) -> tuple[str, str]:
    """Which evidence says the audience buys outside its declared field."""
    zh: list[str] = []
    en: list[str] = []
    if any(profile.interests.get(k, 0.0) > 0.2 for k in keys):
        zh.append("成员兴趣")
        en.append("members' interests")
    if max((profile.content_counts.get(k, 0.0) for k in keys), default=0.0) >= 0.5:
        zh.append("专业内容")
        en.append("the community's content")
    if any(s.quality > 0 for s in related):
        zh.append("复购记录")
        en.append("repurchase records")
    return ("、".join(zh) or "成员行为"), (" and ".join(en) or "members' behaviour")


def _trust_reasons(
    lexicon: Lexicon,
    profile: AudienceProfile,
    keys: list[str],
    related: list[SalesSignal],
    declared_field: bool,
) -> list[Reason]:
    """The content, broad interests and sales history behind the trust figure."""
    reasons: list[Reason] = []
    # an item counts fully in each domain it is about: the items of the best-covered domain, not a sum
    content = max((profile.content_counts.get(k, 0.0) for k in keys), default=0.0)
    broad = [k for k in keys if profile.standing.get(k, 0.0) >= DECLARED_LEVEL and not declared_field]
    if broad:
        members = round(max(profile.interest_members.get(k, 0.0) for k in broad))
        share = max(profile.interest_shares.get(k, 0.0) for k in broad)
        zh_names, en_names = _names(lexicon, broad, "zh"), _names(lexicon, broad, "en")
        zh = f"{members} 位成员关注 {zh_names}, 约为社群成员的 {share:.0%}: 兴趣广泛, 足以代表社群"
        en = (
            f"{members} members are interested in {en_names}, about {share:.0%} of the membership: "
            "a broad interest that speaks for the community"
        )
        reasons.append(Reason(FOR_FIT, zh, en, f"尽管{zh}", f"Despite {en[0].lower()}{en[1:]}"))
    if content >= 0.5:
        n = round(content)
        pieces = "piece" if n == 1 else "pieces"
        zh = f"本社群在 {_names(lexicon, keys, 'zh')} 领域有 {n} 篇专业内容"
        en = f"the community has {n} {pieces} of content on {_names(lexicon, keys, 'en')}"
        reasons.append(Reason(FOR_FIT, zh, en[0].upper() + en[1:], f"尽管{zh}", f"Despite: {en}"))
    elif not related and not broad:
        if declared_field:
            reasons.append(
                Reason(
                    FOR_FIT,
                    "该领域是社群的主业, 信任来自社群属性 (专业内容与复购记录尚待积累)",
                    "this is the community's declared field: trust rests on its attributes "
                    "(content and repurchase history still to build)",
                    "尽管该领域是社群的主业",
                    "Despite this being the community's declared field",
                )
            )
        else:
            reasons.append(
                Reason(
                    FOR_WARNING,
                    "本社群在该领域无内容与复购记录",
                    "the community has no content and no repurchase history in this domain",
                )
            )
    for signal in related[:3]:
        reasons.append(_sales_reason(signal))
    return reasons


def _sales_reason(signal: SalesSignal) -> Reason:
    facts_zh = (
        f"类目 {signal.category} 历史 {signal.orders} 单, 复购率 {_percent(signal.repurchase_rate)}, "
        f"退款率 {_percent(signal.refund_rate)}"
    )
    facts_en = (
        f"category {signal.category}: {signal.orders} orders, repurchase rate "
        f"{_percent(signal.repurchase_rate)}, refund rate {_percent(signal.refund_rate)}"
    )
    if signal.confidence < FEW_ORDERS_CONFIDENCE:
        return Reason(NEUTRAL, f"{facts_zh}: 样本较少", f"{facts_en}: few orders yet")
    if signal.quality > 0.3:
        return Reason(
            FOR_FIT,
            f"{facts_zh}: 复购良好",
            f"{facts_en}: healthy repurchase",
            f"尽管{facts_zh}",
            f"Despite {facts_en}",
        )
    if signal.quality < -0.3:
        return Reason(
            FOR_WARNING,
            f"{facts_zh}: 信任受损",
            f"{facts_en}: trust damaged",
            f"尽管{facts_zh}",
            f"Despite {facts_en}",
        )
    return Reason(NEUTRAL, f"{facts_zh}: 信号一般", f"{facts_en}: mixed signal")


# ---------------------------------------------------------------- case adapters


def evidence_from_case(case_community: Mapping[str, Any]) -> CommunityEvidence:
    """The contract's JSON ``community`` object; ``member_interests``, ``content``, ``sales`` optional."""
    content = tuple(
        ContentItem(str(c.get("title", "")), tuple(str(t) for t in c.get("tags", ()) or ()))
        for c in case_community.get("content", ()) or ()
    )
    sales = tuple(
        SalesRecord(
            str(s.get("category", "")),
            int(s.get("orders", 0) or 0),
            int(s.get("buyers", 0) or 0),
            int(s.get("repeat_buyers", 0) or 0),
            int(s.get("refunds", 0) or 0),
        )
        for s in case_community.get("sales", ()) or ()
    )
    interests = {str(k): int(v) for k, v in (case_community.get("member_interests") or {}).items()}
    return CommunityEvidence(
        name=str(case_community.get("name", "")),
        description=str(case_community.get("description", "") or ""),
        mission=str(case_community.get("mission", "") or ""),
        attributes=tuple(str(a) for a in case_community.get("attributes", ()) or ()),
        member_interests=interests,
        content=content,
        sales=sales,
    )


def product_from_case(case_product: Mapping[str, Any]) -> ProductInput:
    """The contract's JSON ``product`` object (``price`` is not a fit signal and is ignored)."""
    return ProductInput(
        title=str(case_product.get("title", "")),
        description=str(case_product.get("description", "") or ""),
        category=str(case_product.get("category", "") or ""),
        tags=tuple(str(t) for t in case_product.get("tags", ()) or ()),
    )
