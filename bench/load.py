"""Load the API through gunicorn on loopback and compare each endpoint with /healthz.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_scale \\
        .venv/bin/python bench/load.py --seconds 15 --clients 8 --workers 3

Uses whatever data the database holds (run ``seed_demo`` or ``seed_demo
--scale`` first): picks the community with the most products and an active
member of it, gives the member a token through the ORM, restocks the SKUs it
will buy, starts gunicorn, then for each scenario runs ``--clients`` client
processes for ``--seconds`` seconds (bounded in count and time, loopback only)
and prints p50/p99 latency, throughput and the ratio to /healthz.
"""

import argparse
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn_backend.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shequn_scale")
MAX_REQUESTS_PER_CLIENT = 50_000


def setup_world() -> dict:
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    from django.db.models import Count

    from commerce.models import Sku
    from members.models import Community, Membership
    from members.services.users import user_token

    community = Community.objects.annotate(n=Count("products")).order_by("-n").first()
    member = Membership.objects.filter(community=community, status="active", role="member").first()
    sku = (
        Sku.objects.filter(
            product__community=community,
            product__is_active=True,
            product__kind="goods",
            product__min_tier__isnull=True,
        )
        .order_by("pk")
        .first()
    )
    Sku.objects.filter(pk=sku.pk).update(stock=10_000_000)
    return {"slug": community.slug, "token": user_token(user=member.user), "sku": sku.pk}


def scenario_request(name: str, base: str, world: dict, session: requests.Session, n: int) -> int:
    headers = {"Authorization": f"Bearer {world['token']}"}
    if name == "healthz":
        return session.get(f"{base}/healthz").status_code
    if name == "product_list":
        return session.get(
            f"{base}/api/v1/communities/{world['slug']}/products/?page_size=20", headers=headers
        ).status_code
    if name == "order_list":
        return session.get(f"{base}/api/v1/orders/?page_size=20", headers=headers).status_code
    if name == "order_create":
        body = {"community": world["slug"], "lines": [{"sku": world["sku"], "quantity": 1}]}
        return session.post(f"{base}/api/v1/orders/", json=body, headers=headers).status_code
    raise ValueError(name)


def client(name, base, world, seconds, out):
    session = requests.Session()
    latencies, errors, deadline = [], 0, time.perf_counter() + seconds
    for n in range(MAX_REQUESTS_PER_CLIENT):
        if time.perf_counter() > deadline:
            break
        started = time.perf_counter()
        status = scenario_request(name, base, world, session, n)
        latencies.append(time.perf_counter() - started)
        errors += status >= 400
    out.put((latencies, errors))


def run(name, base, world, seconds, clients) -> dict:
    out = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=client, args=(name, base, world, seconds, out)) for _ in range(clients)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - started
    latencies = sorted(x for lat, _ in results for x in lat)
    return {
        "requests": len(latencies),
        "errors": sum(e for _, e in results),
        "rps": len(latencies) / wall,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--scenarios", default="healthz,product_list,order_list,order_create")
    args = parser.parse_args()
    world = setup_world()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    from tests.commerce.stripe_server import FakeStripe  # the tests' Stripe stand-in

    stripe = FakeStripe()
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + "x" * 60,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "STATIC_MANIFEST": "0",
        "LOG_LEVEL": "WARNING",
        "STRIPE_API_BASE": stripe.start(),
        "STRIPE_SECRET_KEY": "sk_test_local",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "shequn_backend.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{base}/healthz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.2)
        rows = {
            name: run(name, base, world, args.seconds, args.clients) for name in args.scenarios.split(",")
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        stripe.stop()
    health = rows.get("healthz", {}).get("rps")
    print(
        f"gunicorn workers {args.workers}, {args.clients} client processes, {args.seconds:.0f} s per scenario"
    )
    print("| scenario | requests | errors | req/s | p50 ms | p99 ms | healthz req/s / this |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        ratio = f"{health / r['rps']:.1f}" if health else "-"
        cells = [
            name,
            r["requests"],
            r["errors"],
            f"{r['rps']:.0f}",
            f"{r['p50']:.1f}",
            f"{r['p99']:.1f}",
            ratio,
        ]
        print("| " + " | ".join(map(str, cells)) + " |")


if __name__ == "__main__":
    main()
