"""Load the API through gunicorn on loopback with wrk and compare each hot path with /healthz.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_scale \\
        .venv/bin/python bench/load.py --seconds 10 --runs 3

Needs ``wrk`` (Debian: ``apt-get install -y wrk``); the tests never do. Uses the
data the database holds (``seed_demo --scale`` first) and can run again on the
same database: it only adds orders, with provider ids unique per run.

* Server: gunicorn as configured in ``gunicorn.conf.py`` (gthread), ``--workers``
  processes x ``--threads`` threads, DEBUG=0.
* Floor: ``/healthz`` with the same wrk connections, in the same run; every
  figure is also given as a ratio to it. Medians of ``--runs`` runs.
* Reads: the anonymous community list and detail (cache off, throttle off: the
  query's own cost), a member's product list, and the order list of a buyer
  whose order count is nearest 35 (a regular buyer).
* Checkout: ``POST /orders/`` against a stub payment provider (the tests'
  local Stripe, ``TCP_NODELAY``) that answers after ``--provider-latency``
  seconds, so the figure shows what a slow provider costs the web tier.
* Race: ``--racers`` distinct buyers released at once on a SKU with
  ``--race-stock`` units (asyncio, connections opened beforehand); counts who
  got one, checks nobody oversold. Floor: the same release asking ``/healthz``.
  ``--race-runs`` races one after another, each printed (when the orders and the
  refusals were answered, the CPU of the machine, of gunicorn and of PostgreSQL)
  and the median p99. ``--race-pause`` leaves the server quiet before each race, as
  before a flash sale: with ``CONN_MAX_AGE`` below it, every thread starts the race
  on a new database connection.
* Contention: the member's product list while anonymous clients hammer the
  community list, with the production settings (anonymous throttle, cache).
"""

import argparse
import asyncio
import json
import os
import re
import runpy
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn_backend.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shequn_scale")
REALISTIC_ORDERS = 35


def realistic_buyer():
    """(the user whose orders, in any community, number nearest REALISTIC_ORDERS, that number);
    (None, 0) without orders. The order list shows the caller's orders of every community."""
    from django.db.models import Count, F
    from django.db.models.functions import Abs

    from commerce.models import Order
    from members.models import User

    row = (
        Order.objects.values("buyer_id")
        .annotate(n=Count("id"))
        .annotate(distance=Abs(F("n") - REALISTIC_ORDERS))
        .order_by("distance", "buyer_id")
        .first()
    )
    return (User.objects.get(pk=row["buyer_id"]), row["n"]) if row else (None, 0)


def setup_world(racers: int, race_stock: int) -> dict:
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.db.models import Count

    from commerce.models import Sku
    from members.models import Community, Membership
    from members.selectors import active_membership_q
    from members.services.users import user_token

    community = Community.objects.annotate(n=Count("products")).order_by("-n").first()
    active = Membership.objects.filter(active_membership_q(), community=community, role="member")
    member = active.first()
    buyer, buyer_orders = realistic_buyer()
    skus = Sku.objects.filter(
        product__community=community,
        product__is_active=True,
        product__kind="goods",
        product__min_tier__isnull=True,
    ).order_by("pk")
    sku, race_sku = skus[0], skus[1]
    Sku.objects.filter(pk=sku.pk).update(stock=10_000_000)
    Sku.objects.filter(pk=race_sku.pk).update(stock=race_stock)
    racers_tokens = [user_token(user=m.user) for m in active.order_by("-pk")[:racers]]
    return {
        "slug": community.slug,
        "token": user_token(user=member.user),
        "buyer_token": user_token(user=buyer or member.user),
        "buyer_orders": buyer_orders,
        "sku": sku.pk,
        "race_sku": race_sku.pk,
        "race_stock": race_stock,
        "racers": racers_tokens,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args, provider_base: str, **extra_env) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "bench-" + "x" * 60,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "STATIC_MANIFEST": "0",
        "LOG_LEVEL": "WARNING",
        "STRIPE_API_BASE": provider_base,
        "STRIPE_SECRET_KEY": "sk_test_local",
        "WEB_WORKERS": str(args.workers),
        "WEB_THREADS": str(args.threads),
        **extra_env,
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "shequn_backend.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            requests.get(f"{base}/healthz", timeout=1)
            return server, base
        except requests.RequestException:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not start")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


LUA_POST = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
"""


def wrk(url: str, *, seconds: float, connections: int, token: str | None = None, body: dict | None = None):
    """One wrk run (1 thread: the machine has 2 cores); returns req/s, p50/p99 ms and non-2xx count."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:.0f}s", "--latency", "--timeout", "10s"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if body is not None:
            script.write(LUA_POST.format(body=json.dumps(body), token=token))
            script.flush()
            command += ["-s", script.name]
        elif token:
            command += ["-H", f"Authorization: Bearer {token}"]
        output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency("50%"),
        "p99": latency("99%"),
        "errors": int(errors.group(1)) if errors else 0,
    }


async def _race(
    base: str, world: dict, floor: bool, server_pid: int
) -> tuple[list[tuple[int, float]], float, float]:
    host, port = base.removeprefix("http://").split(":")
    body = json.dumps(
        {"community": world["slug"], "lines": [{"sku": world["race_sku"], "quantity": 1}]}
    ).encode()

    def request(token: str) -> bytes:
        if floor:
            return f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
        return (
            f"POST /api/v1/orders/ HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def answer(reader: asyncio.StreamReader, started: float) -> tuple[int, float]:
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        return status, time.perf_counter() - started

    connections = [await asyncio.open_connection(host, int(port)) for _token in world["racers"]]
    busy, server, started = machine_busy_seconds(), server_cpu(server_pid), time.perf_counter()
    for (_reader, writer), token in zip(connections, world["racers"], strict=True):
        writer.write(request(token))
    results = await asyncio.gather(*(answer(reader, started) for reader, _writer in connections))
    busy, server = (
        machine_busy_seconds() - busy,
        server_busy_seconds(server, server_cpu(server_pid), server_pid),
    )
    for _reader, writer in connections:
        writer.close()
    return results, busy, server


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent out of idle since boot (``/proc/stat``, Linux)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def server_cpu(server_pid: int) -> dict[int, int]:
    """Nanoseconds on a CPU of each process of the server's side (``/proc/PID/task/*/schedstat``,
    every thread; Linux): gunicorn's master and workers, and the PostgreSQL backends of TCP
    clients (not autovacuum or the checkpointer, whose work is not the requests')."""
    cpu = {}
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            stat = (process / "stat").read_text()
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            command = (process / "cmdline").read_bytes().decode(errors="replace")
            backend = command.startswith("postgres: ") and " 127.0.0.1(" in command
            if server_pid in (int(process.name), parent) or backend:
                threads = [(task / "schedstat").read_text() for task in (process / "task").iterdir()]
                cpu[int(process.name)] = sum(int(thread.split()[0]) for thread in threads)
        except (OSError, ValueError):  # gone meanwhile
            continue
    return cpu


def server_busy_seconds(
    before: dict[int, int], after: dict[int, int], server_pid: int
) -> tuple[float, float]:
    """gunicorn's and PostgreSQL's CPU seconds between two ``server_cpu`` readings (a process gone
    by the second reading is left out; a new one counts from zero)."""
    spent = {pid: (now - before.get(pid, 0)) / 1e9 for pid, now in after.items()}
    ours = gunicorn_pids(server_pid)
    gunicorn = sum(seconds for pid, seconds in spent.items() if pid in ours)
    return gunicorn, sum(spent.values()) - gunicorn


def gunicorn_pids(server_pid: int) -> set[int]:
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return {server_pid, *map(int, children)}


def race(base: str, world: dict, server_pid: int, *, floor: bool = False) -> dict:
    """Every racer posts one order for one unit at the same instant; returns outcomes and latency.

    The client is asyncio on connections opened beforehand (kept alive, as a mini-program's are),
    so its own cost stays small; ``floor``: the same racers, connections and release, each asking
    ``/healthz`` instead (what 200 requests at once cost without the order). ``busy``: the CPU
    seconds the whole machine spent during the race (server, database, stub provider, client);
    divided by the cores it is a lower bound for the last answer. ``gunicorn``, ``postgres``: the
    server's parts of it; ``won_ms``, ``refused_ms``: when the first and the last of each were answered.
    """
    results, busy, server = asyncio.run(_race(base, world, floor, server_pid))
    latencies = sorted(seconds for _status, seconds in results)
    won = sorted(seconds for status, seconds in results if status in (200, 201))
    refused = sorted(seconds for status, seconds in results if status == 409)
    return {
        "gunicorn": server[0],
        "postgres": server[1],
        "won_ms": (won[0] * 1000, won[-1] * 1000) if won else None,
        "refused_ms": (refused[0] * 1000, refused[-1] * 1000) if refused else None,
        "busy": busy,
        "won": sum(status in (200, 201) for status, _ in results),
        "refused": sum(status == 409 for status, _ in results),
        "other": sum(status not in (200, 201, 409) for status, _ in results),
        "other_statuses": sorted({status for status, _ in results if status not in (200, 201, 409)}),
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
    }


def span(bounds: tuple[float, float] | None) -> str:
    return "-" if bounds is None else f"{bounds[0]:.0f} to {bounds[1]:.0f}"


def reset_race(world: dict) -> None:
    """Cancel earlier runs' unpaid orders of the race SKU (their stock comes back), then set its stock."""
    from commerce.models import Order, Sku
    from commerce.services.orders import order_cancel
    from shequn_backend.audit import SYSTEM

    for order in Order.objects.filter(status=Order.Status.PENDING_PAYMENT, lines__sku_id=world["race_sku"]):
        order_cancel(actor=SYSTEM, order=order, reason="bench: the next race")
    Sku.objects.filter(pk=world["race_sku"]).update(stock=world["race_stock"])


def scenarios(world: dict, base: str) -> dict:
    api = f"{base}/api/v1"
    return {
        "healthz": {"url": f"{base}/healthz"},
        "communities (anonymous)": {"url": f"{api}/communities/?page_size=20"},
        "community detail (anonymous)": {"url": f"{api}/communities/{world['slug']}/"},
        "product list (member, 20)": {
            "url": f"{api}/communities/{world['slug']}/products/?page_size=20",
            "token": world["token"],
        },
        f"order list (buyer with {world['buyer_orders']} orders)": {
            "url": f"{api}/orders/?page_size=20",
            "token": world["buyer_token"],
        },
    }


def median_row(rows: list[dict]) -> dict:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16, help="wrk connections for reads")
    parser.add_argument("--checkout-connections", type=int, default=48)
    deployed = runpy.run_path(str(ROOT / "gunicorn.conf.py"))  # its workers and threads by default
    parser.add_argument("--workers", type=int, default=deployed["workers"])
    parser.add_argument("--threads", type=int, default=deployed["threads"])
    parser.add_argument("--provider-latency", type=float, default=0.3)
    parser.add_argument("--racers", type=int, default=200)
    parser.add_argument("--race-stock", type=int, default=50)
    parser.add_argument(
        "--race-pause", type=float, default=0, help="quiet seconds before each race (see CONN_MAX_AGE)"
    )
    parser.add_argument("--race-runs", type=int, default=3, help="races, one after another (reported each)")
    parser.add_argument("--skip", default="", help="comma-separated: reads,checkout,race,contention")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    world = setup_world(args.racers, args.race_stock)
    from tests.commerce.stripe_server import FakeStripe  # the tests' Stripe stand-in, TCP_NODELAY

    provider = FakeStripe()
    provider_base = provider.start()
    provider.slow(args.provider_latency)
    results: dict[str, list[dict]] = {}
    server, base = start_server(
        args, provider_base, PUBLIC_CACHE_SECONDS="0", ANON_BROWSE_THROTTLE_RATE="100000000/s"
    )
    races, race_floors, contention = [], [], {}
    try:
        for _run in range(args.runs):
            if "reads" not in skip:
                for name, spec in scenarios(world, base).items():
                    row = wrk(
                        spec["url"],
                        seconds=args.seconds,
                        connections=args.connections,
                        token=spec.get("token"),
                    )
                    results.setdefault(name, []).append(row)
            else:
                row = wrk(f"{base}/healthz", seconds=args.seconds, connections=args.connections)
                results.setdefault("healthz", []).append(row)
            if "checkout" not in skip:
                body = {"community": world["slug"], "lines": [{"sku": world["sku"], "quantity": 1}]}
                row = wrk(
                    f"{base}/api/v1/orders/",
                    seconds=args.seconds,
                    connections=args.checkout_connections,
                    token=world["token"],
                    body=body,
                )
                results.setdefault(
                    f"POST /orders/ (provider {args.provider_latency * 1000:.0f} ms)", []
                ).append(row)
        for _run in range(0 if "race" in skip else args.race_runs):
            race_floors.append(race(base, world, server.pid, floor=True))
            reset_race(world)
            time.sleep(args.race_pause)
            races.append(race(base, world, server.pid))
    finally:
        stop_server(server)
    if "contention" not in skip:
        server, base = start_server(args, provider_base)  # production settings: throttle + cache
        try:
            product_list = f"{base}/api/v1/communities/{world['slug']}/products/?page_size=20"
            # Warm up first (threads, connections, caches), so that both runs below meet the same server.
            wrk(product_list, seconds=2, connections=args.connections, token=world["token"])
            alone = wrk(
                product_list, seconds=args.seconds, connections=args.connections, token=world["token"]
            )
            noisy = threading.Thread(
                target=wrk,
                args=(f"{base}/api/v1/communities/",),
                kwargs={"seconds": args.seconds, "connections": 4},
            )
            noisy.start()
            crowded = wrk(
                product_list, seconds=args.seconds, connections=args.connections, token=world["token"]
            )
            noisy.join()
            contention = {"alone": alone, "with 4 anonymous clients": crowded}
        finally:
            stop_server(server)
    provider.stop()

    print(
        f"gunicorn gthread {args.workers} workers x {args.threads} threads; wrk 1 thread, "
        f"{args.connections} connections for reads, {args.checkout_connections} for checkout; "
        f"{args.seconds:.0f} s per scenario; median of {args.runs} runs"
    )
    health = median_row(results["healthz"])["rps"]
    print("| scenario | req/s | p50 ms | p99 ms | non-2xx | /healthz req/s / this |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, rows in results.items():
        row = median_row(rows)
        print(
            f"| {name} | {row['rps']:.0f} | {row['p50']:.1f} | {row['p99']:.1f} | {row['errors']:.0f} "
            f"| {health / row['rps']:.1f} |"
        )
    for number, (result, floor) in enumerate(zip(races, race_floors, strict=True), 1):
        print(
            f"\nrace {number}: {len(world['racers'])} buyers for {world['race_stock']} units: "
            f"{result['won']} orders, {result['refused']} refused (409), "
            f"{result['other']} other {result['other_statuses']}; "
            f"p50 {result['p50']:.0f} ms, p99 {result['p99']:.0f} ms "
            f"(orders answered from {span(result['won_ms'])} ms, refusals from "
            f"{span(result['refused_ms'])} ms), CPU: machine {result['busy']:.2f} s "
            f"({result['busy'] / os.cpu_count() * 1000:.0f} ms on {os.cpu_count()} cores), "
            f"gunicorn {result['gunicorn']:.2f} s, PostgreSQL {result['postgres']:.2f} s; "
            f"floor, the same racers asking /healthz at once: p50 {floor['p50']:.0f} ms, "
            f"p99 {floor['p99']:.0f} ms, CPU: machine {floor['busy']:.2f} s, "
            f"gunicorn {floor['gunicorn']:.2f} s, PostgreSQL {floor['postgres']:.2f} s "
            f"({floor['won']} answered 200)"
        )
    if races:
        p99, floor_p99 = (statistics.median(row["p99"] for row in rows) for rows in (races, race_floors))
        cpu = statistics.median(r["busy"] for r in races)
        print(
            f"race, median of {len(races)}: p99 {p99:.0f} ms (floor {floor_p99:.0f} ms, "
            f"{p99 / floor_p99:.1f}x), the machine's CPU {cpu:.2f} s per race"
        )
    for label, row in contention.items():
        print(f"product list, production settings, {label}: {row['rps']:.0f} req/s, p99 {row['p99']:.1f} ms")


if __name__ == "__main__":
    main()
