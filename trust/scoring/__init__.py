"""The trust and audience-match scorer: pure Python, no Django (see docs/scorer.md)."""

from trust.scoring.engine import (
    AudienceProfile,
    CommunityEvidence,
    ContentItem,
    FitResult,
    ProductInput,
    SalesRecord,
    assess,
    build_profile,
    evidence_from_case,
    product_from_case,
)
from trust.scoring.lexicon import Lexicon

__all__ = [
    "AudienceProfile",
    "CommunityEvidence",
    "ContentItem",
    "FitResult",
    "Lexicon",
    "ProductInput",
    "SalesRecord",
    "assess",
    "build_profile",
    "evidence_from_case",
    "product_from_case",
]
