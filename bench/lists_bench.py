"""CPU per request of the member's product list and the buyer's order list beside ``/healthz``, in-process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_scale \\
        .venv/bin/python bench/lists_bench.py [--runs 300] [--profile products|orders]

Django's test client, DEBUG=0, the same process for every path: each round requests
``/healthz``, the anonymous community list (no cache, no throttle), the product list (a
member, page of 20) and the order list (the buyer nearest 35 orders, page of 20) once, timing
each with ``time.process_time`` (this process's CPU, so PostgreSQL's own work and other
processes' load are not counted). Medians of ``--runs`` rounds; ratios to ``/healthz``;
queries per request. ``--profile`` prints cProfile's top functions of one path instead.
Read-only apart from the tokens it makes.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn_backend.settings")
os.environ["DEBUG"] = "0"
os.environ["SECURE_SSL_REDIRECT"] = "0"
os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 60)
os.environ["LOG_LEVEL"] = "WARNING"
# The public list's own cost: no cache, no anonymous throttle (as bench/load.py reads it).
os.environ["PUBLIC_CACHE_SECONDS"] = "0"
os.environ["ANON_BROWSE_THROTTLE_RATE"] = "100000000/s"
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shequn_scale")


def world() -> dict:
    sys.path.insert(0, str(ROOT / "bench"))
    from django.db.models import Count
    from load import realistic_buyer

    from members.models import Community, Membership
    from members.selectors import active_membership_q
    from members.services.users import user_token

    community = Community.objects.annotate(n=Count("products")).order_by("-n", "pk").first()
    active = Membership.objects.filter(active_membership_q(), community=community, role="member")
    member = active.order_by("pk").first()
    buyer, buyer_orders = realistic_buyer()
    return {
        "healthz": ("/healthz", None),
        "communities": ("/api/v1/communities/?page_size=20", None),
        "products": (
            f"/api/v1/communities/{community.slug}/products/?page_size=20",
            user_token(user=member.user),
        ),
        "orders": ("/api/v1/orders/?page_size=20", user_token(user=buyer)),
        "buyer_orders": buyer_orders,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--profile", choices=["healthz", "communities", "products", "orders"])
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    paths = world()
    client = Client(SERVER_NAME="localhost")

    def get(name):
        url, token = paths[name]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = client.get(url, headers=headers)
        assert response.status_code == 200, (name, response.status_code, response.content[:200])
        return response

    names = ["healthz", "communities", "products", "orders"]
    for name in names * 20:
        get(name)
    if args.profile:
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.runs):
            get(args.profile)
        profile.disable()
        pstats.Stats(profile).sort_stats(os.environ.get("BENCH_SORT", "tottime")).print_stats(40)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(60)
        return
    queries = {}
    for name in names:
        with CaptureQueriesContext(connection) as captured:
            get(name)
        queries[name] = len(captured)
    times = {name: [] for name in names}
    for _ in range(args.runs):
        for name in names:
            start = time.process_time()
            get(name)
            times[name].append(time.process_time() - start)
    floor = statistics.median(times["healthz"])
    print(f"buyer with {paths['buyer_orders']} orders; {args.runs} rounds; CPU ms per request (median)")
    for name in names:
        median = statistics.median(times[name])
        print(f"{name:10s} {median * 1000:7.3f} ms  {median / floor:5.2f}x  {queries[name]} queries")


if __name__ == "__main__":
    main()
