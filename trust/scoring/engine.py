"""Audience match and domain trust: does a product fit a community, and is the trust earned?

Pure Python on plain data classes, so the admin, the API, the batch job and the
``assess_fit`` command all run this one code path. Two numbers per pair:

* ``audience_match``: how much this community's audience buys from the product's
  domains. The product's domains come from its category (the lexicon's
  category-to-audience mapping) and its words; the audience's from declared
  attributes, name, mission, description, members' interests, what members buy
  and re-buy, and the community's content.
* ``trust``: trust earned in those domains. A prior (moderately high in the
  declared domains, low elsewhere) moved up by professional content and
  repurchase, down by refunds and one-off buying.

``score = audience_match * (TRUST_FLOOR + (1 - TRUST_FLOOR) * trust)``: fame
alone sells a little, so low trust cuts the score but never to zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trust.scoring.lexicon import Lexicon

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
# Match = BEST_SHARE * best single domain + (1 - BEST_SHARE) * weighted average over the product's domains.
BEST_SHARE = 0.6
UNIVERSAL_AFFINITY = 0.7  # a community's own events / memberships
UNKNOWN_PRODUCT_MATCH = 0.3  # nothing in the lexicon recognises the product: say so, caution

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


def _text_domains(lexicon: Lexicon, texts: Iterable[str]) -> dict[str, float]:
    found: dict[str, float] = {}
    for text in texts:
        if text:
            _accumulate(found, lexicon.match_text(text))
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
    """Weigh every signal about the community once, so each ``assess`` is a few dict lookups."""
    declared_raw: dict[str, float] = {}
    for attribute in evidence.attributes:
        _accumulate(declared_raw, _scaled(_topical(lexicon, lexicon.match_text(attribute)), ATTRIBUTE_WEIGHT))
    for text, weight in (
        (evidence.name, NAME_WEIGHT),
        (evidence.mission, MISSION_WEIGHT),
        (evidence.description, DESCRIPTION_WEIGHT),
    ):
        if text:
            _accumulate(declared_raw, _scaled(_topical(lexicon, lexicon.match_text(text)), weight))
    declared = _spread(lexicon, {k: v**AFFINITY_EXPONENT for k, v in _by_max(declared_raw).items()})

    interest_affinity, interest_shares = _interest_affinity(lexicon, evidence.member_interests)
    content_counts = _content_counts(lexicon, evidence.content)
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

    mixed: dict[str, float] = {}
    for part, weight in (
        (declared_raw, MIX_DECLARED),
        (interest_shares, MIX_INTERESTS),
        (content_counts, MIX_CONTENT),
        (sales_affinity, MIX_SALES),
    ):
        _accumulate(mixed, _scaled(part, weight))
    trust = {key: _domain_trust(declared, content_counts, signals, key, category=None) for key in affinity}
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
    )


def _interest_affinity(
    lexicon: Lexicon, interests: Mapping[str, int]
) -> tuple[dict[str, float], dict[str, float]]:
    """A domain that many members name is bought by the audience; more members, more confidence."""
    total = sum(max(int(c), 0) for c in interests.values())
    if total <= 0:
        return {}, {}
    counts: dict[str, float] = {}
    for tag, count in interests.items():
        _accumulate(counts, _scaled(_topical(lexicon, lexicon.match_text(tag)), max(int(count), 0)))
    shares = {k: v / total for k, v in counts.items()}
    confidence = _clamp(math.log1p(total) / math.log1p(INTEREST_FULL_COUNT))
    return {k: confidence * _clamp(INTEREST_SHARE_GAIN * s) for k, s in shares.items()}, shares


def _content_counts(lexicon: Lexicon, content: Iterable[ContentItem]) -> dict[str, float]:
    counts: dict[str, float] = {}
    for item in content:
        found = _topical(lexicon, _text_domains(lexicon, (item.title, *item.tags)))
        _accumulate(counts, _scaled(found, 1.0))
    return counts


def _domain_trust(
    declared: Weights,
    content_counts: Weights,
    sales: Iterable[SalesSignal],
    domain: str,
    category: str | None,
) -> float:
    """Prior from what the community declares, moved by content and by sales in the domain.

    Sales in the product's own category count fully, other categories of the same domain half.
    """
    prior = TRUST_BASE + (TRUST_DECLARED - TRUST_BASE) * declared.get(domain, 0.0)
    content = 1.0 - math.exp(-content_counts.get(domain, 0.0) / CONTENT_ITEMS_SCALE)
    weighted_orders = 0.0
    weighted_quality = 0.0
    for signal in sales:
        share = signal.domains.get(domain, 0.0)
        if share <= 0:
            continue
        factor = 1.0 if category is None or signal.category == category else OTHER_CATEGORY_FACTOR
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


def product_domains(lexicon: Lexicon, product: ProductInput) -> dict[str, float]:
    """Which audiences buy the product, each in [0, 1].

    The category says which audiences buy it; title, tags and description add the audiences
    they name ("婴儿" shampoo, "跑步" T-shirt). Each source is evidence on its own, so a domain
    takes the larger of the two. Words that only say "event" or "membership" do not outweigh
    words that say what the event is about.
    """
    category = _by_max(lexicon.category_domains(product.category)) if product.category else {}
    words = _text_domains(lexicon, (product.title, *product.tags))
    if product.description:
        _accumulate(
            words,
            {k: DESCRIPTION_TEXT_FACTOR * v for k, v in lexicon.match_text(product.description).items()},
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


def assess(lexicon: Lexicon, profile: AudienceProfile, product: ProductInput) -> FitResult:
    """Score one product for one community profile; explain the verdict in both languages."""
    domains = product_domains(lexicon, product)
    match, contributions = _audience_match(lexicon, profile, domains)
    trust = _product_trust(lexicon, profile, product.category, domains, contributions)
    score = _clamp(match * (TRUST_FLOOR + (1.0 - TRUST_FLOOR) * trust))
    if score >= FIT_THRESHOLD:
        level = "fit"
    elif score >= MISMATCH_THRESHOLD:
        level = "caution"
    else:
        level = "mismatch"
    reasons_zh, reasons_en = _reasons(lexicon, profile, product, domains, contributions, match, trust, level)
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
        weights = dict(profile.declared)
    total = sum(weights.values())
    if total <= 0:
        return TRUST_BASE
    return (
        sum(
            w * _domain_trust(profile.declared, profile.content_counts, profile.sales, k, category or None)
            for k, w in weights.items()
        )
        / total
    )


# ---------------------------------------------------------------- reasons

DECLARED_LEVEL = 0.5  # declared affinity from which a domain counts as the community's own field
STRONG_MATCH = 0.45
PARTIAL_MATCH = 0.2
FEW_ORDERS_CONFIDENCE = 0.3  # below this sales confidence a record is reported as "few orders"


def _names(lexicon: Lexicon, keys: Iterable[str], lang: str) -> str:
    separator = ", " if lang == "en" else "、"
    return separator.join(lexicon.name(k, lang) for k in keys)


def _top(weights: Mapping[str, float], n: int, minimum: float = 0.0) -> list[str]:
    ranked = sorted(((v, k) for k, v in weights.items() if v > minimum), reverse=True)
    return [k for _, k in ranked[:n]]


def _percent(rate: float) -> str:
    return f"{rate:.1%}"


def _reasons(
    lexicon: Lexicon,
    profile: AudienceProfile,
    product: ProductInput,
    domains: Mapping[str, float],
    contributions: Mapping[str, float],
    match: float,
    trust: float,
    level: str,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Headline (audience fit; the evidence behind trust), sales details, then the verdict with figures."""
    topical = {k: v for k, v in domains.items() if not lexicon.is_universal(k)}
    product_keys = _top(topical or domains, 2, 0.2)
    via = _top(contributions, 2, 0.15)
    # A membership or an event with no topic of its own stands on the community's own field.
    keys = via or (product_keys if topical else _top(profile.declared, 2, DECLARED_LEVEL))
    declared_field = any(profile.declared.get(k, 0.0) >= DECLARED_LEVEL for k in keys)
    attrs = ", ".join(profile.attributes[:4]) or profile.name or "-"
    category = product.category or product.title
    zh_dom, en_dom = _names(lexicon, product_keys, "zh"), _names(lexicon, product_keys, "en")
    related = [s for s in profile.sales if s.orders > 0 and s.category == product.category] or [
        s
        for s in profile.sales
        if s.orders > 0 and any(s.domains.get(k, 0.0) >= DECLARED_LEVEL for k in keys)
    ]

    if not domains:
        zh = (
            f"无法从商品类目与文字 ({category or '-'}) 识别所属领域, 请人工确认是否符合社群属性 ({attrs})",
            f"匹配度 {match:.2f}, 信任度 {trust:.2f}: 建议人工确认",
        )
        en = (
            f"Neither the category nor the text ({category or '-'}) names a known domain; "
            f"check it against the community's attributes ({attrs})",
            f"Audience match {match:.2f}, trust {trust:.2f}: check by hand",
        )
        return zh, en
    if match >= STRONG_MATCH and (declared_field or not via):
        zh_head = f"商品类目 {category} ({zh_dom}) 与社群属性 ({attrs}) 相符"
        en_head = f"Category {category} ({en_dom}) fits the community's attributes ({attrs})"
    elif match >= STRONG_MATCH:
        zh_channels, en_channels = _channels(profile, keys, related)
        zh_head = (
            f"商品类目 {category} ({zh_dom}) 不在社群属性 ({attrs}) 之内, 但{zh_channels}显示成员买这类商品"
        )
        en_head = (
            f"Category {category} ({en_dom}) is outside the community's attributes ({attrs}), "
            f"but {en_channels} show members buy it"
        )
    elif match >= PARTIAL_MATCH:
        zh_head = f"商品类目 {category} ({zh_dom}) 与社群属性 ({attrs}) 仅部分相关" + (
            f", 经由 {_names(lexicon, via, 'zh')}" if via else ""
        )
        en_head = f"Category {category} ({en_dom}) only partly fits the community's attributes ({attrs})" + (
            f", through {_names(lexicon, via, 'en')}" if via else ""
        )
    else:
        zh_head = f"社群属性 ({attrs}) 与商品类目 {category} ({zh_dom}) 无关联"
        en_head = f"The community's attributes ({attrs}) do not cover category {category} ({en_dom})"

    zh_ev, en_ev = _evidence(lexicon, profile, keys, related, declared_field)
    zh = [f"{zh_head}; {zh_ev[0]}", *zh_ev[1:]]
    en = [f"{en_head}; {en_ev[0]}", *en_ev[1:]]
    if level == "fit":
        zh.append(f"匹配度 {match:.2f}, 信任度 {trust:.2f}: 适合在本社群上架")
        en.append(f"Audience match {match:.2f}, trust {trust:.2f}: fits this community")
    else:
        zh.append(f"匹配度 {match:.2f}, 信任度 {trust:.2f}: 凭知名度或能少量售出, 但难以形成复购, 建议谨慎")
        en.append(
            f"Audience match {match:.2f}, trust {trust:.2f}: fame may sell a little, "
            f"but expect no repurchase; list with care"
        )
    return tuple(zh), tuple(en)


def _channels(profile: AudienceProfile, keys: list[str], related: list[SalesSignal]) -> tuple[str, str]:
    """Which evidence says the audience buys outside its declared field."""
    zh: list[str] = []
    en: list[str] = []
    if any(profile.interests.get(k, 0.0) > 0.2 for k in keys):
        zh.append("成员兴趣")
        en.append("members' interests")
    if sum(profile.content_counts.get(k, 0.0) for k in keys) >= 0.5:
        zh.append("专业内容")
        en.append("the community's content")
    if any(s.quality > 0 for s in related):
        zh.append("复购记录")
        en.append("repurchase records")
    return ("、".join(zh) or "成员行为"), (" and ".join(en) or "members' behaviour")


def _evidence(
    lexicon: Lexicon,
    profile: AudienceProfile,
    keys: list[str],
    related: list[SalesSignal],
    declared_field: bool,
) -> tuple[list[str], list[str]]:
    """Name the content and the sales history behind the trust figure: first sentence, then details."""
    content = sum(profile.content_counts.get(k, 0.0) for k in keys)
    if content < 0.5 and not related:
        if declared_field:
            return (
                ["该领域是社群的主业, 信任来自社群属性, 尚无内容与复购记录佐证"],
                [
                    "this is the community's declared field: trust rests on its attributes, "
                    "with no content or repurchase history yet"
                ],
            )
        return (
            ["本社群在该领域无内容与复购记录"],
            ["the community has no content and no repurchase history in this domain"],
        )
    if content >= 0.5:
        n = round(content)
        zh_first = f"本社群在 {_names(lexicon, keys, 'zh')} 领域有 {n} 篇专业内容"
        pieces = "piece" if n == 1 else "pieces"
        en_first = f"the community has {n} {pieces} of content on {_names(lexicon, keys, 'en')}"
    else:
        zh_first = "本社群在该领域无专业内容"
        en_first = "the community has no content in this domain"
    zh_sales: list[str] = []
    en_sales: list[str] = []
    for signal in related[:3]:
        if signal.confidence < FEW_ORDERS_CONFIDENCE:
            verdict_zh, verdict_en = "样本较少", "few orders yet"
        elif signal.quality > 0.3:
            verdict_zh, verdict_en = "复购良好", "healthy repurchase"
        elif signal.quality < -0.3:
            verdict_zh, verdict_en = "信任受损", "trust damaged"
        else:
            verdict_zh, verdict_en = "信号一般", "mixed signal"
        zh_sales.append(
            f"类目 {signal.category} 历史 {signal.orders} 单, 复购率 {_percent(signal.repurchase_rate)}, "
            f"退款率 {_percent(signal.refund_rate)}: {verdict_zh}"
        )
        en_sales.append(
            f"category {signal.category}: {signal.orders} orders, repurchase rate "
            f"{_percent(signal.repurchase_rate)}, refund rate {_percent(signal.refund_rate)}: {verdict_en}"
        )
    if not zh_sales:
        return [f"{zh_first}, 无该类目销售记录"], [f"{en_first}, no sales history in this category"]
    return [f"{zh_first}; {zh_sales[0]}", *zh_sales[1:]], [f"{en_first}; {en_sales[0]}", *en_sales[1:]]


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
