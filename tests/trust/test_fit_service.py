"""The scorer wired to the database: lexicon tables, assessments kept current, the command, content posts."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from commerce.models import Category
from members.services.communities import community_set_attributes
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory
from tests.members.test_auth_api import assert_error
from tests.trust.builders import committed, list_product
from trust import services
from trust.lexicon_store import current_lexicon
from trust.models import CategoryAudience, CommunityAudience, Domain, DomainTerm, FitAssessment
from trust.scoring.ranking import precision_recall, roc_auc

pytestmark = pytest.mark.django_db
DEV_CASES = Path(__file__).resolve().parent / "data" / "fit_dev.jsonl"


make_product = list_product


@pytest.fixture
def finance_club():
    return CommunityFactory(
        name="财经频道书友会", mission="解读商业案例与投资逻辑", attributes=["财经", "投资理财"]
    )


def test_every_leaf_category_in_the_catalog_maps_to_an_audience_domain():
    leaves = Category.objects.filter(children__isnull=True)
    assert leaves.count() >= 116
    unmapped = leaves.exclude(pk__in=CategoryAudience.objects.values("category_id")).values_list(
        "path", flat=True
    )
    assert list(unmapped) == []


def test_assess_fit_command_meets_the_bar_on_the_development_cases(tmp_path):
    output = tmp_path / "results.jsonl"
    call_command("assess_fit", "--input", str(DEV_CASES), "--output", str(output))
    cases = {c["id"]: c for c in map(json.loads, DEV_CASES.read_text().splitlines())}
    results = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["id"] for r in results] == list(cases)
    labels = [cases[r["id"]]["expect_warning"] for r in results]
    assert roc_auc(labels, [1 - r["score"] for r in results]) >= 0.95
    precision, recall = precision_recall(labels, [r["warning"] for r in results])
    assert precision >= 0.90 and recall >= 0.90
    first = results[0]
    assert set(first) == {"id", "audience_match", "trust", "score", "level", "warning", "reasons"}
    assert first["level"] in {"fit", "caution", "mismatch"} and first["reasons"]


def test_assess_fit_command_reports_a_bad_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "community": {}}\n')
    with pytest.raises(Exception, match="Line 1"):
        call_command("assess_fit", "--input", str(bad), "--output", str(tmp_path / "out.jsonl"))


def test_a_product_is_assessed_when_saved_and_a_misfit_warns_with_reasons(finance_club):
    book = make_product(finance_club, title="《聪明的投资者》", category="图书/投资理财", tags=["价值投资"])
    fruit = make_product(finance_club, title="千岛湖杨梅 5斤装", category="生鲜/水果", tags=["杨梅"])
    assert FitAssessment.objects.get(product=book).level == "fit"
    misfit = FitAssessment.objects.get(product=fruit)
    assert misfit.warning and misfit.level in {"caution", "mismatch"}
    reasons = " ".join(misfit.reasons_zh)
    assert "财经" in reasons and "生鲜/水果" in reasons
    assert misfit.reasons_en and 0 <= misfit.score < FitAssessment.objects.get(product=book).score <= 1


def test_changing_attributes_marks_the_community_stale_and_the_job_rescores(
    finance_club, django_capture_on_commit_callbacks
):
    fruit = make_product(finance_club, title="有机苹果", category="生鲜/水果", tags=["水果"])
    assert FitAssessment.objects.get(product=fruit).warning
    with django_capture_on_commit_callbacks() as announced:
        community_set_attributes(community=finance_club, attributes=["生鲜", "水果", "农产品"])
    assert not CommunityAudience.objects.filter(community=finance_club, stale_since__isnull=False).exists()
    for send in announced:  # the commit: trust hears the event (its queued re-score waits for the next)
        send()
    assert CommunityAudience.objects.get(community=finance_club).stale_since is not None

    assert services.stale_community_ids(now=timezone.now()) == [finance_club.pk]
    assert services.community_rescore(community_id=finance_club.pk) == 1
    assert not FitAssessment.objects.get(product=fruit).warning
    assert services.stale_community_ids(now=timezone.now()) == []
    assert services.community_rescore(community_id=finance_club.pk) == 1  # again: same state
    assert FitAssessment.objects.count() == 1


def test_committed_attribute_change_rescores_through_the_queued_job(finance_club):
    fruit = make_product(finance_club, title="有机苹果", category="生鲜/水果", tags=["水果"])

    with committed():  # embedded default: the queued task runs eagerly after commit
        community_set_attributes(community=finance_club, attributes=["生鲜", "水果", "农产品"])

    assert not FitAssessment.objects.get(product=fruit).warning
    assert CommunityAudience.objects.get(community=finance_club).stale_since is None


def test_content_posts_move_trust_in_their_domain(finance_club):
    tea = make_product(finance_club, title="2015 年老班章普洱茶饼", category="茶叶/普洱", tags=["普洱"])
    before = FitAssessment.objects.get(product=tea)
    for title in ["普洱茶的投资价值", "老班章与山头茶", "普洱仓储与品鉴", "茶叶市场十年复盘"]:
        services.content_post_create(
            community=finance_club,
            title=title,
            tags=["普洱", "茶"],
            published_at=None,
            actor=finance_club.owner,
        )
    services.community_rescore(community_id=finance_club.pk)
    after = FitAssessment.objects.get(product=tea)
    assert after.trust > before.trust and after.score > before.score


def test_nightly_rescore_marks_every_community_stale(finance_club):
    other = CommunityFactory()
    CommunityAudience.objects.all().delete()
    assert services.communities_mark_all_stale(now=timezone.now()) == 2
    assert set(services.stale_community_ids(now=timezone.now())) == {finance_club.pk, other.pk}


def test_an_edited_lexicon_is_used_by_the_next_assessment(finance_club):
    first = current_lexicon()
    assert current_lexicon() is first  # unchanged tables: the same object, no rebuild
    DomainTerm.objects.create(domain=Domain.objects.get(key="finance"), term="区块链白皮书", lang="zh")
    second = current_lexicon()
    assert second is not first
    assert "finance" in second.match_text("区块链白皮书")


class TestPostsApi:
    def test_owner_records_content(self, finance_club):
        client = client_for(finance_club.owner)
        response = client.post(
            f"/api/v1/owner/communities/{finance_club.slug}/posts/",
            {"title": "第 12 期：读懂基金定投", "tags": ["基金", "理财"]},
            format="json",
        )
        assert response.status_code == 201, response.content
        assert response.json()["tags"] == ["基金", "理财"]
        listed = client.get(f"/api/v1/owner/communities/{finance_club.slug}/posts/").json()
        assert listed["count"] == 1

    def test_others_get_404_and_bad_input_400(self, finance_club):
        member = MembershipFactory(community=finance_club).user
        other_owner = CommunityFactory().owner
        url = f"/api/v1/owner/communities/{finance_club.slug}/posts/"
        for user in (member, other_owner):
            assert_error(client_for(user).post(url, {"title": "x"}, format="json"), 404, "not_found")
        error = assert_error(
            client_for(finance_club.owner).post(url, {"tags": "x"}, format="json"), 400, "validation_error"
        )
        assert set(error["fields"]) == {"title", "tags"}


def test_the_batch_upsert_updates_every_field_and_skips_products_deleted_meanwhile(finance_club):
    book = make_product(finance_club, title="《聪明的投资者》", category="图书/投资理财", tags=["价值投资"])
    fruit = make_product(finance_club, title="千岛湖杨梅 5斤装", category="生鲜/水果", tags=["杨梅"])
    stored = FitAssessment.objects.get(product=book)
    result = services.fit_result(
        evidence=services.selectors.community_evidence(community=finance_club),
        product=services.selectors.product_input(fruit),
    )
    gone = services._assessment_row(fruit.pk + 1000, result)  # a product deleted before the batch lands
    services._save_assessments([services._assessment_row(book.pk, result), gone])
    updated = FitAssessment.objects.get(product=book)
    assert (updated.level, updated.warning, updated.score) == (result.level, True, round(result.score, 4))
    assert updated.reasons_zh == list(result.reasons_zh) and updated.reasons_en == list(result.reasons_en)
    assert updated.product_domains == {k: round(v, 4) for k, v in result.product_domains.items()}
    assert updated.assessed_at >= stored.assessed_at
    assert FitAssessment.objects.count() == 2
    assert services.community_rescore(community_id=finance_club.pk) == 2
    assert FitAssessment.objects.get(product=book).level == "fit"


def test_a_rescore_stores_the_profile_in_one_upsert(finance_club, django_assert_max_num_queries):
    make_product(finance_club, title="《聪明的投资者》", category="图书/投资理财", tags=["价值投资"])
    services.community_rescore(community_id=finance_club.pk)
    first = CommunityAudience.objects.get(community=finance_club).scored_at
    with django_assert_max_num_queries(10):
        assert services.community_rescore(community_id=finance_club.pk) == 1
    audience = CommunityAudience.objects.get(community=finance_club)
    assert audience.scored_at > first and audience.profile["engine"] and audience.trust["finance"] > 0
