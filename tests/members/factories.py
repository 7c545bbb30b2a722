from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from members.models import Community, EntryPlan, InviteCode, Membership, Tier, User
from members.services.communities import community_ensure_owner_membership, community_set_attributes
from members.services.memberships import community_member_counts_refresh, new_referral_code

PASSWORD = "correct-horse-battery"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    nickname = factory.Faker("name", locale="zh_CN")
    password = factory.django.Password(PASSWORD)


class CommunityFactory(DjangoModelFactory):
    class Meta:
        model = Community
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"community-{n}")
    name = factory.Sequence(lambda n: f"社群{n}")
    mission = "一起成长"
    owner = factory.SubFactory(UserFactory)
    entry_type = Community.EntryType.FREE

    @factory.post_generation
    def attributes(self, create, extracted, **kwargs):
        if create and extracted:
            community_set_attributes(community=self, attributes=extracted)

    @factory.post_generation
    def with_owner_membership(self, create, extracted, **kwargs):
        if create:
            community_ensure_owner_membership(community=self)


class EntryPlanFactory(DjangoModelFactory):
    class Meta:
        model = EntryPlan

    community = factory.SubFactory(CommunityFactory, entry_type=Community.EntryType.PAID)
    name = factory.Sequence(lambda n: f"年度会员{n}")
    price = Decimal("199.00")
    period_days = 365
    refund_window_days = 3


class TierFactory(DjangoModelFactory):
    class Meta:
        model = Tier

    community = factory.SubFactory(CommunityFactory)
    level = factory.Sequence(lambda n: n + 1)
    name = factory.LazyAttribute(lambda o: f"L{o.level}")
    points_threshold = factory.LazyAttribute(lambda o: (o.level - 1) * 100)
    discount_percent = Decimal("0")


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    community = factory.SubFactory(CommunityFactory)
    role = Membership.Role.MEMBER
    status = Membership.Status.ACTIVE
    referral_code = factory.LazyFunction(new_referral_code)
    joined_at = factory.LazyFunction(timezone.now)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        """Saved directly (not through the services), so the community's stored count is recounted."""
        membership = super()._create(model_class, *args, **kwargs)
        community_member_counts_refresh(community_ids=[membership.community_id])
        return membership


class InviteCodeFactory(DjangoModelFactory):
    class Meta:
        model = InviteCode

    community = factory.SubFactory(CommunityFactory, entry_type=Community.EntryType.INVITE)
    code = factory.Sequence(lambda n: f"INVITE{n:04d}")
    max_uses = 1
