from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from members.models import User
from members.services.addresses import PHONE
from shequn_backend.api.fields import MoneyInput, RefusedField, StrictBooleanField, StrictCharField


def tag_field() -> serializers.CharField:
    return StrictCharField(max_length=32, allow_blank=False)


class UserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    nickname = serializers.CharField()


class ProfileOutput(UserOutput):
    interests = serializers.ListField(child=serializers.CharField(), source="interest_tags")


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()
    user = UserOutput()


class RegisterInput(serializers.Serializer):
    username = StrictCharField(max_length=150, validators=[UnicodeUsernameValidator()])
    password = StrictCharField(max_length=128, write_only=True, trim_whitespace=False)
    nickname = StrictCharField(max_length=64, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        candidate = User(username=attrs["username"], nickname=attrs.get("nickname", ""))
        try:
            password_validation.validate_password(attrs["password"], candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs


class LoginInput(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=128, trim_whitespace=False)


class PasswordChangeInput(serializers.Serializer):
    old_password = StrictCharField(max_length=128, trim_whitespace=False)
    new_password = StrictCharField(max_length=128, trim_whitespace=False)

    def validate_new_password(self, value):
        try:
            password_validation.validate_password(value, self.context.get("user"))
        except DjangoValidationError as exc:
            raise serializers.ValidationError(list(exc.messages)) from exc
        return value


class WechatLoginInput(serializers.Serializer):
    code = StrictCharField(max_length=128)


class PhoneOutput(serializers.Serializer):
    phone = serializers.CharField()


class UserWrapOutput(serializers.Serializer):
    user = UserOutput()


class ProfileUpdateInput(serializers.Serializer):
    nickname = StrictCharField(max_length=64, required=False, allow_blank=True)
    interests = serializers.ListField(child=tag_field(), required=False, max_length=30)


# --- Communities ---------------------------------------------------------------


class Money(serializers.DecimalField):
    """The contract's money: a string with two decimals, never a float."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 10)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)


class PlanOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    price = Money()
    currency = serializers.CharField()
    period_days = serializers.IntegerField(allow_null=True)
    trial_days = serializers.IntegerField()
    refund_window_days = serializers.IntegerField()


class EntryOutput(serializers.Serializer):
    type = serializers.CharField(source="entry_type")
    plans = PlanOutput(many=True, source="active_plans")


_PRICE = Money()


class CommunityOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    mission = serializers.CharField()
    attributes = serializers.ListField(child=serializers.CharField(), source="attribute_tags")
    entry = EntryOutput(source="*")
    member_count = serializers.IntegerField()

    def to_representation(self, community):
        """The fields above, built directly (the public list renders 20 communities with their plans)."""
        return {
            "slug": community.slug,
            "name": community.name,
            "mission": community.mission,
            "attributes": [str(tag) for tag in community.attribute_tags],
            "entry": {
                "type": community.entry_type,
                "plans": [
                    {
                        "id": plan.pk,
                        "name": plan.name,
                        "price": _PRICE.to_representation(plan.price),
                        "currency": plan.currency,
                        "period_days": plan.period_days,
                        "trial_days": plan.trial_days,
                        "refund_window_days": plan.refund_window_days,
                    }
                    for plan in community.active_plans
                ],
            },
            "member_count": community.member_count,
        }


def community_detail_body(row: tuple) -> dict:
    """The ``CommunityDetailOutput`` body of ``community_row_public``'s row."""
    *listed, description, rules = row
    return {**community_page_bodies([listed])[0], "description": description, "rules": rules}


def community_page_bodies(rows: list[tuple]) -> list[dict]:
    """``CommunityOutput`` bodies of ``community_page_public``'s rows (the same text, built from rows)."""
    return [
        {
            "slug": slug,
            "name": name,
            "mission": mission,
            "attributes": attributes or [],
            "entry": {
                "type": entry_type,
                "plans": [
                    {
                        "id": plan_id,
                        "name": plan_name,
                        "price": price,
                        "currency": currency,
                        "period_days": period_days,
                        "trial_days": trial_days,
                        "refund_window_days": refund_window_days,
                    }
                    for plan_id, plan_name, price, currency, period_days, trial_days, refund_window_days in (
                        plans or []
                    )
                ],
            },
            "member_count": member_count,
        }
        for _total, slug, name, mission, attributes, entry_type, plans, member_count in rows
    ]


class CommunityDetailOutput(CommunityOutput):
    description = serializers.CharField()
    rules = serializers.CharField()

    def to_representation(self, community):
        return {
            **super().to_representation(community),
            "description": community.description,
            "rules": community.rules,
        }


class ReferralSettings(serializers.Serializer):
    level1_percent = Money(max_digits=5, min_value=0, max_value=50, source="referral_level1_percent")
    level2_percent = Money(max_digits=5, min_value=0, max_value=50, source="referral_level2_percent")
    return_window_days = serializers.IntegerField(min_value=0, max_value=365)
    on_entry_orders = serializers.BooleanField(source="commission_on_entry_orders")


class OwnerCommunityOutput(CommunityDetailOutput):
    referral = ReferralSettings(source="*")
    points_per_yuan = Money(max_digits=6)

    def to_representation(self, community):
        return serializers.Serializer.to_representation(self, community)  # every declared field, walked


class PlanInput(serializers.Serializer):
    name = StrictCharField(max_length=64)
    price = MoneyInput(max_value=1_000_000)
    currency = StrictCharField(max_length=3, required=False, default="CNY")
    period_days = serializers.IntegerField(min_value=1, max_value=3650, required=False, allow_null=True)
    trial_days = serializers.IntegerField(min_value=0, max_value=90, required=False, default=0)
    refund_window_days = serializers.IntegerField(min_value=0, max_value=30, required=False, default=3)

    def validate(self, attrs):
        # Inside a partial update (PATCH) DRF makes nested fields optional too: a plan still needs these.
        missing = [name for name in ("name", "price") if name not in attrs]
        if missing:
            raise serializers.ValidationError({name: [_("This field is required.")] for name in missing})
        return attrs


class CommunityInput(serializers.Serializer):
    slug = serializers.SlugField(max_length=50)
    name = StrictCharField(max_length=100)
    mission = StrictCharField(max_length=500, required=False, allow_blank=True, default="")
    description = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")
    rules = StrictCharField(max_length=5000, required=False, allow_blank=True, default="")
    attributes = serializers.ListField(child=tag_field(), max_length=20, required=False, default=list)
    entry_type = serializers.ChoiceField(choices=["free", "paid", "approval", "invite"], default="free")
    plans = PlanInput(many=True, required=False, default=list, max_length=10)

    def validate(self, attrs):
        if attrs.get("entry_type") == "paid" and not attrs.get("plans"):
            raise serializers.ValidationError({"plans": [_("A paid community needs at least one plan.")]})
        names = [plan["name"] for plan in attrs.get("plans", [])]
        if len(names) != len(set(names)):
            raise serializers.ValidationError({"plans": [_("Plan names must be different.")]})
        return attrs


class ReferralInput(serializers.Serializer):
    level1_percent = MoneyInput(max_value=50, required=False)
    level2_percent = MoneyInput(max_value=50, required=False)
    return_window_days = serializers.IntegerField(min_value=0, max_value=365, required=False)
    on_entry_orders = StrictBooleanField(required=False)


class CommunityUpdateInput(CommunityInput):
    # The address never changes (links and QR codes point at it): a slug sent is refused, not ignored.
    slug = RefusedField(required=False)
    referral = ReferralInput(required=False)
    points_per_yuan = MoneyInput(max_value=1000, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


# --- Memberships ---------------------------------------------------------------


class TierOutput(serializers.Serializer):
    name = serializers.CharField()
    level = serializers.IntegerField()


class MembershipOutput(serializers.Serializer):
    id = serializers.IntegerField()
    community = serializers.CharField(source="community.slug")
    status = serializers.CharField()
    role = serializers.CharField()
    tier = TierOutput(allow_null=True)
    points = serializers.IntegerField()
    joined_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    referral_code = serializers.CharField()


class MemberOutput(MembershipOutput):
    """A membership as its community's owner sees it."""

    nickname = serializers.CharField(source="user.nickname")
    referred_by = serializers.IntegerField(source="referred_by_id", allow_null=True)
    referred_by_nickname = serializers.CharField(
        source="referred_by.user.nickname", default=None, allow_null=True
    )


class PointsEntryOutput(serializers.Serializer):
    community = serializers.CharField(source="membership.community.slug")
    delta = serializers.IntegerField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class AddressInput(serializers.Serializer):
    name = serializers.CharField(max_length=50)
    phone = serializers.RegexField(PHONE.pattern, max_length=20, help_text="Digits, e.g. 13800138000")
    province = serializers.CharField(max_length=50)
    city = serializers.CharField(max_length=50)
    district = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    detail = serializers.CharField(max_length=200)
    is_default = serializers.BooleanField(required=False, default=False)


class AddressOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    phone = serializers.CharField()
    province = serializers.CharField()
    city = serializers.CharField()
    district = serializers.CharField()
    detail = serializers.CharField()
    is_default = serializers.BooleanField()
