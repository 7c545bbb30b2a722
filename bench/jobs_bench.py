"""Time each scheduled job on the scale data beside the equivalent single SQL statement (the floor).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_scale DEBUG=1 \\
        .venv/bin/python manage.py seed_demo --scale --members 100000 --orders 1000000 --seed 1
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_scale \\
        .venv/bin/python bench/jobs_bench.py [--now ISO] [JOB ...]

Each job runs in a fresh child process, judged by the same ``--now``; its peak
memory is the child's own (``VmHWM``, see ``bench/peak.py``: ``ru_maxrss``
would report the parent's), with ``--python-peak`` also ``tracemalloc``'s peak of the job's Python
allocations beside it. The floor runs the set-based SQL that does the job's
essential work, the same writes (ledger and audit rows for settlement; for the
expiry the member counts, audit rows, exits and stale marks too; for the sender
its two writes per message, the claim and the outcome, and the daily counts),
its foreign keys checked at once as the job's commits check them, inside a
transaction that is rolled back, before the job, on the same data. Neither
pays for opening the database connection. Jobs change the data: to repeat a
run, clone the loaded database first (``createdb -T shequn_scale
shequn_scale_run``) and point DATABASE_URL at the clone.
"""

import argparse
import json
import os
import statistics
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
# Tasks a job queues for other workers (trust's re-scoring after membership changes) go to an
# in-process queue and are dropped: in production a worker runs them, they are not the job's time.
# Without a broker Celery would run them eagerly inside the job.
os.environ.setdefault("CELERY_BROKER_URL", "memory://")

# The physical floor: one statement (or a few in a row) doing the job's essential work, the same writes,
# rolled back afterwards.
FLOORS = {
    # What the job writes per lapsed order: the order cancelled, its lines' units back to their SKUs (the
    # lines remember it), its reserved coupon free again, its open payments cancelled, one audit row.
    "release_stock_holds": """
        WITH due AS (
            SELECT id, community_id, coupon_id, hold_expires_at FROM commerce_order
            WHERE status = 'pending_payment' AND hold_expires_at <= %(now)s
            FOR UPDATE),
        lines AS (
            SELECT l.id, l.sku_id, l.quantity - l.quantity_released AS delta
            FROM commerce_orderline l JOIN due ON due.id = l.order_id
            WHERE l.sku_id IS NOT NULL AND l.quantity > l.quantity_released),
        stock AS (
            UPDATE commerce_sku s SET stock = s.stock + d.delta
            FROM (SELECT sku_id, sum(delta) AS delta FROM lines GROUP BY sku_id) AS d WHERE s.id = d.sku_id),
        released AS (
            UPDATE commerce_orderline l SET quantity_released = l.quantity FROM lines WHERE l.id = lines.id),
        cancelled AS (
            UPDATE commerce_order o
            SET status = 'cancelled', payment_status = 'cancelled', cancelled_at = %(now)s,
                cancel_reason = 'The payment hold expired.', hold_expires_at = NULL, updated_at = %(now)s
            FROM due WHERE o.id = due.id),
        coupons AS (
            UPDATE commerce_membercoupon c SET status = 'available', order_id = NULL
            FROM due WHERE c.id = due.coupon_id AND c.order_id = due.id AND c.status = 'reserved'),
        payments AS (
            UPDATE commerce_payment p SET status = 'canceled'
            FROM due WHERE p.order_id = due.id AND p.status IN ('creating', 'pending'))
        INSERT INTO shequn_backend_auditentry
            (actor_label, action, target_type, target_id, community_id, changes, note, created_at)
        SELECT 'job:release_stock_holds', 'order.cancelled', 'commerce.order', id::text, community_id,
               jsonb_build_object('status', jsonb_build_array('pending_payment', 'cancelled'),
                                  'payment_status', jsonb_build_array('unpaid', 'cancelled'),
                                  'hold_expires_at', jsonb_build_array(hold_expires_at, NULL)),
               '', %(now)s
        FROM due""",
    "settle_commissions": """
        WITH s AS (
            UPDATE commerce_commission c SET status = 'settled', settled_at = %(now)s
            FROM members_membership m
            WHERE m.id = c.beneficiary_id AND m.status <> 'banned'
              AND c.status = 'pending' AND c.settle_after <= %(now)s
            RETURNING c.id, c.beneficiary_id, c.community_id, c.amount - c.amount_reversed AS a),
        e AS (
            INSERT INTO commerce_commissionentry
                (beneficiary_id, commission_id, kind, amount, currency, idempotency_key, note, created_at)
            SELECT beneficiary_id, id, 'settlement', a, 'CNY', 'commission:' || id || ':settled', '', %(now)s
            FROM s WHERE a > 0)
        INSERT INTO shequn_backend_auditentry
            (actor_label, action, target_type, target_id, community_id, changes, note, created_at)
        SELECT 'job:settle_commissions', 'commission.settled', 'commerce.commission', id::text, community_id,
               jsonb_build_object('status', jsonb_build_array('pending', 'settled')), '', %(now)s
        FROM s""",
    # The job's essential rows (issue 19: like for like, as settlement's floor writes its ledger and
    # audit rows): the memberships expired, their communities' member counts, their audit rows, and
    # what trust records after each chunk: the exits (dated at expires_at) and the communities marked
    # stale. Not the re-scores queued: a worker's work. The exits' and audit rows' foreign keys are
    # checked at commit, which a rolled-back floor never reaches: see FLOORS_CHECK_AT_ONCE.
    "expire_memberships": """
        WITH expired AS (
            UPDATE members_membership SET status = 'expired'
            WHERE status = 'active' AND expires_at <= %(now)s
            RETURNING id, community_id, expires_at),
        counts AS (
            UPDATE members_community c SET member_count = c.member_count - leaving.n
            FROM (SELECT community_id, COUNT(*) AS n FROM expired GROUP BY community_id) leaving
            WHERE c.id = leaving.community_id),
        audit AS (
            INSERT INTO shequn_backend_auditentry
                (actor_label, action, target_type, target_id, community_id, changes, note, created_at)
            SELECT 'job:expire_memberships', 'membership.expired', 'members.membership', id::text,
                   community_id, jsonb_build_object('status', jsonb_build_array('active', 'expired')), '',
                   %(now)s
            FROM expired),
        stale AS (
            INSERT INTO trust_communityaudience (community_id, domains, trust, profile, stale_since)
            SELECT DISTINCT community_id, '{}'::jsonb, '{}'::jsonb, '{}'::jsonb, %(now)s::timestamptz
            FROM expired
            ON CONFLICT (community_id) DO UPDATE SET stale_since = EXCLUDED.stale_since
            WHERE trust_communityaudience.stale_since IS NULL)
        INSERT INTO trust_membershipexit (membership_id, community_id, status, exited_at)
        SELECT id, community_id, 'expired', expires_at FROM expired""",
    # What the job writes per membership about to expire: the reminder (once per expiry), its
    # notification in the outbox and its audit row (no community here offers a renewal coupon).
    "renewal_reminders": """
        WITH due AS (
            SELECT m.id, m.user_id, m.community_id, m.expires_at, c.name
            FROM members_membership m JOIN members_community c ON c.id = m.community_id
            WHERE m.status = 'active' AND m.expires_at > %(now)s
              AND m.expires_at <= %(now)s::timestamptz + interval '7 days'),
        reminders AS (
            INSERT INTO commerce_reminder
                (membership_id, community_id, kind, due_on, due_at, message, created_at)
            SELECT id, community_id, 'renewal', (expires_at AT TIME ZONE 'Asia/Shanghai')::date, expires_at,
                   'Your membership of ' || name || ' expires on '
                   || (expires_at AT TIME ZONE 'Asia/Shanghai')::date || '. Renew it to stay in.', %(now)s
            FROM due
            ON CONFLICT DO NOTHING
            RETURNING id, membership_id, community_id, due_on, due_at, message),
        notifications AS (
            INSERT INTO commerce_notification
                (user_id, kind, community_id, reminder_id, key, channel, title, body, data, template_id,
                 consent_spent, msgid, status, attempts, last_error, available_at, created_at)
            SELECT due.user_id, 'renewal', r.community_id, r.id, '', 'wechat', 'Renewal', r.message,
                   jsonb_build_object('community', due.name, 'product', '', 'due_at', r.due_at),
                   '', false, '', 'pending', 0, '', %(now)s, %(now)s
            FROM reminders r JOIN due ON due.id = r.membership_id)
        INSERT INTO shequn_backend_auditentry
            (actor_label, action, target_type, target_id, community_id, changes, note, created_at)
        SELECT 'job:renewal_reminders', 'reminder.created', 'commerce.reminder', r.id::text, r.community_id,
               jsonb_build_object('kind', 'renewal', 'due_on', r.due_on, 'user', due.user_id), '', %(now)s
        FROM reminders r JOIN due ON due.id = r.membership_id""",
    "repurchase_reminders": """
        SELECT o.buyer_id, l.product_id, max(o.paid_at), count(DISTINCT o.id)
        FROM commerce_orderline l JOIN commerce_order o ON o.id = l.order_id
        WHERE o.kind = 'goods' AND o.status IN ('paid', 'fulfilled', 'completed', 'partially_refunded')
          AND o.paid_at >= %(now)s::timestamptz - interval '365 days'
        GROUP BY o.buyer_id, l.product_id""",
    # Per message what the sender writes (the transport is the log: nothing for it): the claim, committed
    # before the transport is called (at least once: the attempt counted, the row leased, its slot of
    # the member's daily count taken, the member's count row of the business day created or raised
    # within the cap), then the outcome (sent); a message over the cap waits for the next morning.
    "send_notifications": (
        """
        WITH due AS (
            SELECT id, user_id, available_at FROM commerce_notification
            WHERE status = 'pending' AND available_at <= %(now)s
            FOR UPDATE),
        ranked AS (
            SELECT id, user_id,
                   row_number() OVER (PARTITION BY user_id ORDER BY available_at, id) <= %(cap)s AS admitted
            FROM due),
        quota AS (
            INSERT INTO commerce_notificationquota (user_id, day, used)
            SELECT user_id, (%(now)s::timestamptz AT TIME ZONE 'Asia/Shanghai')::date, count(*)
            FROM ranked WHERE admitted GROUP BY user_id
            ON CONFLICT (user_id, day) DO UPDATE SET used = commerce_notificationquota.used + excluded.used)
        UPDATE commerce_notification n
        SET attempts = n.attempts + CASE WHEN r.admitted THEN 1 ELSE 0 END,
            quota_day = CASE WHEN r.admitted
                             THEN (%(now)s::timestamptz AT TIME ZONE 'Asia/Shanghai')::date END,
            available_at = %(now)s::timestamptz
                           + CASE WHEN r.admitted THEN interval '5 minutes' ELSE interval '1 day' END
        FROM ranked r WHERE n.id = r.id""",
        """
        UPDATE commerce_notification SET status = 'sent', sent_at = %(now)s, last_error = ''
        WHERE status = 'pending' AND available_at = %(now)s::timestamptz + interval '5 minutes'""",
    ),
}
# Floors whose rows have deferred foreign keys (Django's are DEFERRABLE INITIALLY DEFERRED): the job
# pays their checks when each chunk commits, so the floor checks them at once, inside its statement.
FLOORS_CHECK_AT_ONCE = {
    "expire_memberships",
    "release_stock_holds",
    "renewal_reminders",
    "send_notifications",
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


def child(job: str, now: str, python_peak: bool) -> None:
    """Run one job in this process and print JSON: seconds, count, peak memory in MiB.

    ``tracemalloc`` hooks every allocation and slows Python-heavy jobs 2-3x, so it
    runs only with ``--python-peak`` (then the times are not the job's own).
    """
    import tracemalloc

    import django

    from bench.peak import peak_rss_mib

    django.setup()
    from datetime import datetime

    from django.db import connection

    from shequn_backend.jobs import JOBS

    chunk_seconds = _time_settlement_chunks() if job == "settle_commissions" else []
    connection.ensure_connection()  # as the floor's: opening the connection is not the job's time
    before = peak_rss_mib()
    if python_peak:
        tracemalloc.start()
    started = time.perf_counter()
    count = JOBS[job].run(datetime.fromisoformat(now))
    seconds = time.perf_counter() - started
    python_peak_mib = tracemalloc.get_traced_memory()[1] / 2**20 if python_peak else None
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "count": count,
                "peak_mib": peak_rss_mib(),
                "loaded_mib": before,
                "python_peak_mib": python_peak_mib,
                "chunks": _chunk_summary(chunk_seconds),
            }
        )
    )


def _time_settlement_chunks() -> list[float]:
    """Record each settlement chunk's time (flat per chunk is the point of the keyset)."""
    from commerce.services import commissions

    seconds: list[float] = []
    real = commissions._settle_chunk

    def timed(**kwargs):
        started = time.perf_counter()
        try:
            return real(**kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    commissions._settle_chunk = timed
    return seconds


def _chunk_summary(seconds: list[float]) -> str:
    if len(seconds) < 10:
        return ""
    tenth = len(seconds) // 10
    first, last = seconds[:tenth], seconds[-tenth - 1 : -1]  # the very last chunk is the empty one
    return (
        f"{len(seconds)} chunks, first tenth median {statistics.median(first) * 1000:.0f} ms, "
        f"last tenth median {statistics.median(last) * 1000:.0f} ms"
    )


def rates_floor() -> str:
    """The three GROUP BYs of ``repurchase_rates`` (community, product, category) as one statement."""
    from commerce.models import Order
    from commerce.services.repurchase import _RATES_SQL, _SCOPES

    statuses = ", ".join(f"'{status}'" for status in Order.PAID_STATUSES)
    parts = [
        _RATES_SQL.format(inner=inner, outer=outer, join=join, statuses=statuses).replace(
            "%s", "%(now)s::timestamptz - interval '365 days'"
        )
        for inner, outer, join in _SCOPES.values()
    ]
    return " UNION ALL ".join(f"({part})" for part in parts)


def floor(job: str, now: str) -> float | None:
    import django

    django.setup()
    from django.db import connection, transaction

    sql = rates_floor() if job == "repurchase_rates" else FLOORS.get(job)
    if sql is None:
        return None
    from django.conf import settings

    with transaction.atomic():
        with connection.cursor() as cursor:
            started = time.perf_counter()
            if job in FLOORS_CHECK_AT_ONCE:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for statement in (sql,) if isinstance(sql, str) else sql:  # a few statements, one after another
                cursor.execute(statement, {"now": now, "cap": settings.NOTIFICATION_DAILY_CAP})
            seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("jobs", nargs="*", default=DEFAULT_JOBS)
    parser.add_argument("--now", default=None)
    parser.add_argument(
        "--python-peak",
        action="store_true",
        help="also measure the peak of Python allocations (tracemalloc; slows the jobs 2-3x)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.jobs[0], args.now, args.python_peak)
        return
    from datetime import UTC, datetime

    now = args.now or datetime.now(UTC).isoformat()
    print(f"now={now}")
    print("| job | count | job s | floor s | ratio | peak RSS MiB (Django loaded) | Python peak MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    chunk_lines: list[str] = []
    for job in args.jobs:
        floor_seconds = floor(job, now)
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--now", now, job]
            + (["--python-peak"] if args.python_peak else []),
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        ratio = f"{result['seconds'] / floor_seconds:.1f}" if floor_seconds else "-"
        floor_text = f"{floor_seconds:.2f}" if floor_seconds is not None else "-"
        peak = result["python_peak_mib"]
        peak_text = f"{peak:.1f}" if peak is not None else "-"
        print(
            f"| {job} | {result['count']} | {result['seconds']:.2f} | {floor_text} | {ratio} "
            f"| {result['peak_mib']:.0f} ({result['loaded_mib']:.0f}) | {peak_text} |"
        )
        if result["chunks"]:
            chunk_lines.append(f"{job}: {result['chunks']}")
    for line in chunk_lines:
        print(line)


if __name__ == "__main__":
    main()
