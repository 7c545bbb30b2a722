"""CPU and queries of one checkout (``POST /api/v1/orders/``), in-process, beside /healthz.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_scale \\
        .venv/bin/python bench/checkout_cpu.py --runs 300 [--provider sandbox] [--profile 50] [--queries]

Runs the request through Django's test client against the data the database
holds (``seed_demo --scale`` first), with the tests' local Stripe answering at
once (in a thread of this process: its CPU is not counted) or the sandbox
provider. Figures are ``time.thread_time`` of the request's thread, medians of
``--runs`` requests interleaved with /healthz requests (the floor, measured the
same way in the same run); also the query count of each path, and the refused
racer (409 ``out_of_stock`` on a SKU with no stock left). ``--queries`` lists
the SQL of one checkout and one refusal; ``--profile N`` prints a cProfile of N
checkouts; ``--pg-cpu`` the PostgreSQL backend's CPU per statement of a checkout
(``/proc/PID/schedstat`` of the backend, same machine). It only adds orders (the
first SKU's stock is raised to 10,000,000).
"""

import argparse
import cProfile
import itertools
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn_backend.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shequn_scale")
os.environ.update(
    DEBUG="0",
    SECRET_KEY="bench-" + "x" * 60,
    ALLOWED_HOSTS="testserver,127.0.0.1",
    SECURE_SSL_REDIRECT="0",
    STATIC_MANIFEST="0",
    LOG_LEVEL="WARNING",
)


def world() -> dict:
    from django.db.models import Count

    from commerce.models import Sku
    from members.models import Community, Membership
    from members.selectors import active_membership_q
    from members.services.users import user_token

    community = Community.objects.annotate(n=Count("products")).order_by("-n").first()
    active = Membership.objects.filter(active_membership_q(), community=community, role="member")
    skus = Sku.objects.filter(
        product__community=community,
        product__is_active=True,
        product__kind="goods",
        product__min_tier__isnull=True,
        is_active=True,
    ).order_by("pk")
    sku, sold_out = skus[0], skus[1]
    Sku.objects.filter(pk=sku.pk).update(stock=10_000_000)
    Sku.objects.filter(pk=sold_out.pk).update(stock=0)
    return {
        "slug": community.slug,
        "token": user_token(user=active.first().user),
        "sku": sku.pk,
        "sold_out": sold_out.pk,
    }


def pg_cpu(connection, checkout, runs: int) -> None:
    """The backend's CPU (ns, ``schedstat``) around each statement of ``runs`` checkouts, by kind."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        path = f"/proc/{cursor.fetchone()[0]}/schedstat"

    def spent() -> int:
        with open(path) as stat:
            return int(stat.read().split()[0])

    totals: dict[str, list[int]] = {}

    def measured(execute, sql, params, many, context):
        before = spent()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = " ".join(sql.split()[:3])[:40] if not sql.startswith("INSERT") else "INSERT message"
            totals.setdefault(kind, []).append(spent() - before)

    with connection.execute_wrapper(measured):
        for _ in range(runs):
            checkout()
    print(f"\nPostgreSQL backend CPU per checkout statement, mean of {runs}:")
    for kind, values in sorted(totals.items(), key=lambda item: -sum(item[1])):
        print(f"  {sum(values) / len(values) / 1e6:6.3f} ms  {kind}")
    print(f"  {sum(map(sum, totals.values())) / runs / 1e6:6.3f} ms  in all")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--provider", default="stripe", choices=["stripe", "sandbox"])
    parser.add_argument("--profile", type=int, default=0, help="cProfile this many checkouts")
    parser.add_argument("--profile-path", default="checkout", choices=["checkout", "refused racer (409)"])
    parser.add_argument("--queries", action="store_true", help="list the SQL of one checkout and one refusal")
    parser.add_argument("--pg-cpu", action="store_true", help="PostgreSQL's CPU per statement of a checkout")
    parser.add_argument("--key", action="store_true", help="send a new Idempotency-Key with each request")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from tests.commerce.stripe_server import FakeStripe

    stripe = FakeStripe()
    settings.STRIPE_API_BASE = stripe.start()
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    settings.PAYMENT_SANDBOX_ENABLED = True
    data = world()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {data['token']}")

    def order(sku: int) -> str:
        return json.dumps(
            {"community": data["slug"], "lines": [{"sku": sku, "quantity": 1}], "provider": args.provider}
        )

    keys = itertools.count()

    def post(sku: int):
        headers = {"HTTP_IDEMPOTENCY_KEY": f"bench-{os.getpid()}-{next(keys)}"} if args.key else {}
        return client.post("/api/v1/orders/", order(sku), content_type="application/json", **headers)

    paths = {
        "healthz": lambda: client.get("/healthz"),
        "checkout": lambda: post(data["sku"]),
        "refused racer (409)": lambda: post(data["sold_out"]),
    }
    expected = {"healthz": 200, "checkout": 201, "refused racer (409)": 409}
    queries = {}
    for name, call in paths.items():
        for _ in range(5):  # warm up: imports, connection, caches
            call()
        with CaptureQueriesContext(connection) as captured:
            response = call()
        assert response.status_code == expected[name], (name, response.status_code, response.content[:300])
        queries[name] = captured.captured_queries
    samples = {name: [] for name in paths}
    walls = {name: [] for name in paths}
    for _ in range(args.runs):
        for name, call in paths.items():
            wall, cpu = time.perf_counter(), time.thread_time()
            call()
            samples[name].append(time.thread_time() - cpu)
            walls[name].append(time.perf_counter() - wall)
    keyed = ", a new Idempotency-Key each" if args.key else ""
    print(f"provider {args.provider} (answers at once){keyed}; medians of {args.runs} requests each")
    print("| path | queries | CPU ms (thread) | wall ms | CPU / healthz |")
    print("| --- | --- | --- | --- | --- |")
    floor = statistics.median(samples["healthz"])
    for name in paths:
        cpu, wall = statistics.median(samples[name]), statistics.median(walls[name])
        print(f"| {name} | {len(queries[name])} | {cpu * 1000:.2f} | {wall * 1000:.2f} | {cpu / floor:.1f} |")
    if args.queries:
        for name in ("checkout", "refused racer (409)"):
            print(f"\n{name}: {len(queries[name])} queries")
            for number, query in enumerate(queries[name], 1):
                print(f"{number:3d}. {query['sql'][:400]}")
    if args.pg_cpu:
        pg_cpu(connection, paths["checkout"], args.runs)
    if args.profile:
        profiler = cProfile.Profile(time.thread_time_ns, 1e-9)  # CPU of this thread, not waits
        profiler.enable()
        for _ in range(args.profile):
            paths[args.profile_path]()
        profiler.disable()
        stats = pstats.Stats(profiler).strip_dirs().sort_stats("cumulative")
        stats.print_stats(90)
        stats.sort_stats("tottime").print_stats(40)
    stripe.stop()


if __name__ == "__main__":
    main()
