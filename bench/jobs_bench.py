"""Time each scheduled job on the scale data beside the equivalent single SQL statement (the floor).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_scale DEBUG=1 \\
        .venv/bin/python manage.py seed_demo --scale --members 100000 --orders 1000000 --seed 1
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_scale \\
        .venv/bin/python bench/jobs_bench.py [--now ISO] [JOB ...]

Each job runs in a fresh child process (so peak RSS is the job's own), judged
by the same ``--now``. The floor runs the one set-based statement that does the
job's work inside a transaction that is rolled back, before the job, on the
same data. Jobs change the data: run on a scratch database, load again to repeat.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn_backend.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shequn_scale")
os.environ["LOG_LEVEL"] = "WARNING"

# The physical floor: one statement doing the job's essential work, rolled back afterwards.
FLOORS = {
    "release_stock_holds": """
        UPDATE commerce_order SET status = 'cancelled'
        WHERE status = 'pending_payment' AND hold_expires_at <= %(now)s""",
    "settle_commissions": """
        WITH s AS (
            UPDATE commerce_commission SET status = 'settled', settled_at = %(now)s
            WHERE status = 'pending' AND settle_after <= %(now)s
            RETURNING id, beneficiary_id, amount - amount_reversed AS a)
        INSERT INTO commerce_commissionentry
            (beneficiary_id, commission_id, kind, amount, currency, idempotency_key, note, created_at)
        SELECT beneficiary_id, id, 'settlement', a, 'CNY', 'commission:' || id || ':settled', '', %(now)s
        FROM s WHERE a > 0""",
    "expire_memberships": """
        UPDATE members_membership SET status = 'expired' WHERE status = 'active' AND expires_at <= %(now)s""",
    "renewal_reminders": """
        SELECT id, community_id, expires_at FROM members_membership
        WHERE status = 'active' AND expires_at > %(now)s
          AND expires_at <= %(now)s::timestamptz + interval '7 days'""",
    "repurchase_reminders": """
        SELECT o.buyer_id, l.product_id, max(o.paid_at), count(DISTINCT o.id)
        FROM commerce_orderline l JOIN commerce_order o ON o.id = l.order_id
        WHERE o.kind = 'goods' AND o.status IN ('paid', 'fulfilled', 'completed', 'partially_refunded')
          AND o.paid_at >= %(now)s::timestamptz - interval '365 days'
        GROUP BY o.buyer_id, l.product_id""",
    "repurchase_rates": """
        SELECT community_id, product_id, count(*), count(*) FILTER (WHERE n >= 2) FROM (
            SELECT o.community_id, l.product_id, o.buyer_id, count(DISTINCT o.id) AS n
            FROM commerce_orderline l JOIN commerce_order o ON o.id = l.order_id
            WHERE o.kind = 'goods' AND o.status IN ('paid', 'fulfilled', 'completed', 'partially_refunded')
              AND o.paid_at >= %(now)s::timestamptz - interval '365 days'
            GROUP BY 1, 2, 3) t
        GROUP BY 1, 2""",
    "send_notifications": """
        UPDATE commerce_notification SET status = 'sent', sent_at = %(now)s
        WHERE status = 'pending' AND available_at <= %(now)s""",
}
DEFAULT_JOBS = [
    "release_stock_holds",
    "settle_commissions",
    "expire_memberships",
    "renewal_reminders",
    "repurchase_reminders",
    "repurchase_rates",
    "send_notifications",
]


def child(job: str, now: str) -> None:
    """Run one job in this process and print JSON: seconds, count, peak RSS in MiB."""
    import resource

    import django

    django.setup()
    from datetime import datetime

    from shequn_backend.jobs import JOBS

    started = time.perf_counter()
    count = JOBS[job].run(datetime.fromisoformat(now))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "count": count, "peak_mib": peak}))


def floor(job: str, now: str) -> float | None:
    import django

    django.setup()
    from django.db import connection, transaction

    sql = FLOORS.get(job)
    if sql is None:
        return None
    with transaction.atomic():
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(sql, {"now": now})
            seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("jobs", nargs="*", default=DEFAULT_JOBS)
    parser.add_argument("--now", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.jobs[0], args.now)
        return
    from datetime import UTC, datetime

    now = args.now or datetime.now(UTC).isoformat()
    print(f"now={now}")
    print(f"{'job':<22}{'count':>10}{'job s':>10}{'floor s':>10}{'ratio':>8}{'peak MiB':>10}")
    for job in args.jobs:
        floor_seconds = floor(job, now)
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--now", now, job],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        ratio = f"{result['seconds'] / floor_seconds:.1f}" if floor_seconds else "-"
        floor_text = f"{floor_seconds:.2f}" if floor_seconds is not None else "-"
        print(
            f"{job:<22}{result['count']:>10}{result['seconds']:>10.2f}{floor_text:>10}{ratio:>8}"
            f"{result['peak_mib']:>10.0f}"
        )


if __name__ == "__main__":
    main()
