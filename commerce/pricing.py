"""Money arithmetic: tier prices, minor units, proportional shares. Decimal only, never float."""

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from members.models import Tier

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def tier_price(*, list_price: Decimal, tier: Tier | None) -> Decimal:
    """The price a member of ``tier`` sees and pays: list price less the tier discount, to the fen."""
    discount = tier.discount_percent if tier is not None else Decimal(0)
    return (list_price * (HUNDRED - discount) / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal) -> int:
    """Yuan to fen (Stripe's integer minor units for CNY)."""
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


def from_minor_units(amount: int) -> Decimal:
    return (Decimal(amount) / 100).quantize(CENT)


def points_for(*, amount: Decimal, points_per_yuan: Decimal) -> int:
    """Points earned on ``amount``: rounded down, so a refund can never take back more than was given."""
    return int((amount * points_per_yuan).to_integral_value(rounding=ROUND_DOWN))


def proportional_share(*, whole: int, part: Decimal, of: Decimal) -> int:
    """``whole * part / of`` rounded half up, never above ``whole``; ``of`` == 0 yields 0."""
    if of <= 0:
        return 0
    share = (Decimal(whole) * part / of).to_integral_value(rounding=ROUND_HALF_UP)
    return min(whole, int(share))


def money(amount: Decimal) -> str:
    """The contract's money string: two decimals, e.g. ``"99.00"``."""
    return str(Decimal(amount).quantize(CENT))


def allocate_largest_remainder(*, amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split ``amount`` over ``weights`` in proportion, to the fen, adding up to ``amount`` exactly.

    Largest-remainder: each part is first rounded down, then the fen left over
    go one each to the parts with the largest remainders (earlier parts first
    on a tie). No part exceeds its weight when ``amount`` <= the weights' sum.
    """
    whole = to_minor_units(amount)
    minor = [to_minor_units(weight) for weight in weights]
    base = sum(minor)
    if base <= 0 or whole <= 0:
        return [Decimal("0.00")] * len(weights)
    parts, remainders = [], []
    for index, weight in enumerate(minor):
        part, remainder = divmod(whole * weight, base)
        parts.append(part)
        remainders.append((-remainder, index))
    for _remainder, index in sorted(remainders)[: whole - sum(parts)]:
        parts[index] += 1
    return [from_minor_units(part) for part in parts]
