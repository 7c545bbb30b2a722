"""Re-score N products across M communities with the chunked Celery job on a real worker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_bench \\
        .venv/bin/python bench/rescore_fit.py --communities 100 --products 100 --concurrency 1

Loads synthetic communities and products with bulk inserts (no signals, so
nothing is scored yet; a previous run's rows are removed first, so it runs
again on the same database), starts a Celery worker against the local Redis
and waits until it answers a ping, then sends ``trust.rescore_all`` and waits
until every product has an assessment: the worker's start-up is not timed.
The floor is the in-process time of the same evidence queries and ``assess``
calls, without writes, in one process: compare it with ``--concurrency 1``
(the default); with N worker processes the ratio is also given per process.
"""

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn_backend.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shequn_bench")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "0"

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from commerce.models import Category, Product  # noqa: E402
from members.models import Community, CommunityAttribute, User  # noqa: E402
from trust.lexicon_store import current_lexicon  # noqa: E402
from trust.models import CommunityAudience, FitAssessment  # noqa: E402
from trust.scoring.engine import assess, build_profile  # noqa: E402
from trust.selectors import community_evidence, product_input  # noqa: E402

ATTRIBUTE_SETS = [
    ["财经", "投资理财"],
    ["宝妈", "母婴", "育儿"],
    ["跑步", "马拉松"],
    ["摄影", "器材"],
    ["茶文化", "普洱"],
    ["养猫", "宠物"],
    ["编程", "开源"],
    ["健身", "减脂"],
    ["读书", "人文"],
    ["咖啡", "手冲"],
]
WORDS = ["精选", "限量", "新品", "经典", "入门", "进阶", "家庭装", "礼盒"]


def load(communities: int, products: int, seed: int) -> None:
    rng = random.Random(seed)
    Product.objects.filter(community__slug__startswith="bench-").delete()  # products protect communities
    Community.objects.filter(slug__startswith="bench-").delete()
    owner, _ = User.objects.get_or_create(username="bench-owner")
    created = Community.objects.bulk_create(
        [Community(slug=f"bench-{i}", name=f"基准社群{i}", owner=owner) for i in range(communities)]
    )
    CommunityAttribute.objects.bulk_create(
        [
            CommunityAttribute(community=c, tag=tag, position=j)
            for i, c in enumerate(created)
            for j, tag in enumerate(ATTRIBUTE_SETS[i % len(ATTRIBUTE_SETS)])
        ]
    )
    leaves = list(Category.objects.filter(children__isnull=True))
    Product.objects.bulk_create(
        [
            Product(
                community=c,
                category=(cat := rng.choice(leaves)),
                title=f"{rng.choice(WORDS)}{cat.name_zh}{k}",
                tags=[cat.name_zh],
            )
            for c in created
            for k in range(products)
        ],
        batch_size=2000,
    )


def wait_for(total: int, timeout: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        done = FitAssessment.objects.filter(product__community__slug__startswith="bench-").count()
        stale = CommunityAudience.objects.filter(
            community__slug__startswith="bench-", stale_since__isnull=False
        )
        if done >= total and not stale.exists():
            return time.perf_counter() - started
        time.sleep(0.2)
    raise TimeoutError(f"only {done} of {total} assessed after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--communities", type=int, default=100)
    parser.add_argument("--products", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    total = args.communities * args.products

    call_command("migrate", verbosity=0)
    load(args.communities, args.products, args.seed)
    FitAssessment.objects.filter(product__community__slug__startswith="bench-").delete()

    lexicon = current_lexicon()
    started = time.perf_counter()
    for community in Community.objects.filter(slug__startswith="bench-"):
        profile = build_profile(lexicon, community_evidence(community=community))
        for product in community.products.select_related("category"):
            assess(lexicon, profile, product_input(product))
    floor = time.perf_counter() - started

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "shequn_backend",
            "worker",
            "--concurrency",
            str(args.concurrency),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        from celery import current_app

        for _ in range(300):  # the worker's start-up is not the job's time
            if current_app.control.ping(timeout=0.5):
                break
        else:
            raise TimeoutError("the worker did not answer a ping")
        current_app.control.purge()
        connection.close()
        from trust.tasks import rescore_all_task

        started = time.perf_counter()
        rescore_all_task.delay()
        job = wait_for(total, timeout=600)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    print(f"products: {total} in {args.communities} communities, worker concurrency {args.concurrency}")
    print(f"rescore_all job on a real worker: {job:.2f} s ({job / total * 1000:.2f} ms per product)")
    print(
        f"floor, evidence + assess in one process, no writes: {floor:.2f} s "
        f"({floor / total * 1000:.2f} ms per product)"
    )
    print(f"ratio job / floor: {job / floor:.2f}")
    if args.concurrency > 1:
        print(f"per worker process ({args.concurrency}): {job * args.concurrency / floor:.2f}")


if __name__ == "__main__":
    main()
