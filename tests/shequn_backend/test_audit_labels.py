"""The audit trail in owners' words: actions, field labels and choice names instead of codes."""

import pytest
from django.urls import reverse
from django.utils import translation

from shequn_backend.audit import audit_record
from shequn_backend.audit_labels import action_label, changes_text, target_type_label
from tests.members.factories import CommunityFactory
from tests.test_translations import visible_text

pytestmark = pytest.mark.django_db


def test_codes_read_as_words_in_chinese():
    with translation.override("zh-hans"):
        text = changes_text(
            target_type="commerce.order",
            changes={
                "status": ["paid", "refunded"],
                "needs_review": [False, True],
                "refund_amount": [None, "5"],
            },
        )
        assert text == "状态: 已支付 → 已退款; 待核查: 否 → 是; 退款金额: — → 5"
        assert action_label("order.refund_requested") == "发起退款"
        assert target_type_label("commerce.order") == "订单"


def test_unknown_codes_are_shown_as_stored():
    assert action_label("something.new") == "something.new"
    assert changes_text(target_type="nope.model", changes={"x": [1, 2]}) == "x: 1 → 2"


def test_list_and_object_values_are_written_out():
    changes = {"tags": [["杨梅"], ["杨梅", "水果"]], "x": [{"a": 1}, None], "y": {"b": "乙"}}

    text = changes_text(target_type="commerce.product", changes=changes)

    assert changes_text(target_type="commerce.order", changes={"refund": [None, 7]}) == "退款: — → 7"
    assert "杨梅 → 杨梅、水果" in text and '{"a": 1} → —' in text and '{"b": "乙"}' in text


def test_the_audit_list_shows_actions_and_changes_in_words(client):
    community = CommunityFactory()
    audit_record(
        actor=community.owner,
        action="community.updated",
        target=community,
        community_id=community.pk,
        changes={"entry_type": ["free", "paid"]},
    )
    client.force_login(community.owner)

    page = client.get(reverse("admin:shequn_backend_auditentry_changelist")).content.decode()
    content = visible_text(page)

    assert "修改社群设置" in content and "community.updated" not in content
    assert "→" in content and "free" not in content


def test_system_actors_read_as_words():
    from shequn_backend.audit_labels import actor_text

    with translation.override("zh-hans"):
        assert actor_text("system") == "系统"
        assert actor_text("provider:offline") == "支付通知（线下收款（工作人员登记））"
        assert actor_text("job:settle_commissions") == "定时任务：结算佣金"
        assert actor_text("job:new_job") == "定时任务：new_job"
        assert actor_text("user:5") == "user:5"
        assert changes_text(target_type="commerce.order", changes={"provider": [None, "offline"]}).startswith(
            "支付服务商: — → 线下收款"
        )
