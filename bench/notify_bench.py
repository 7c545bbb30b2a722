"""Send due notifications against a transport that answers in 100 ms, beside issue 19's 200 messages/s.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_scale_run \\
        .venv/bin/python bench/notify_bench.py [--count 2000] [--delay 0.1] [--concurrency N] [--batch N]

Changes data: run it on a clone. Every pending notification is moved out of
the way (a day later), then ``--count`` fresh ones are queued, one per
member (the daily cap holds nothing back), due now; ``notification_send_due``
sends them through ``slow_transport`` (``NOTIFICATION_TRANSPORT``), which
sleeps ``--delay`` seconds per message like a remote API. The floor is the
transport's own limit: ``delay x count / concurrency``.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn_backend.settings")
os.environ.setdefault("DEBUG", "1")
os.environ["LOG_LEVEL"] = "WARNING"
os.environ["NOTIFICATION_TRANSPORT"] = "bench.notify_bench.slow_transport"
os.environ["QUIET_HOURS"] = ""  # measure the sender, whatever the hour in Shanghai

GOAL_PER_SECOND = 200
DELAY = float(os.environ.get("NOTIFY_BENCH_DELAY", "0.1"))


def slow_transport(*, notification) -> None:
    """A remote API that answers in ``DELAY`` seconds and never fails."""
    time.sleep(DELAY)


def queue(count: int, now) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE commerce_notification SET available_at = %s + interval '1 day' WHERE status = 'pending'",
            [now],
        )
        cursor.execute(
            """
            INSERT INTO commerce_notification (user_id, kind, community_id, key, channel, title, body, data,
                template_id, consent_spent, msgid, status, attempts, last_error, available_at, created_at)
            SELECT user_id, 'repurchase', community_id, '', 'wechat', 'Repurchase', 'bench', '{}'::jsonb,
                   '', false, '', 'pending', 0, '', %(now)s, %(now)s
            FROM (SELECT DISTINCT ON (user_id) user_id, community_id FROM members_membership
                  ORDER BY user_id LIMIT %(count)s) members
            """,
            {"now": now, "count": count},
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds the transport takes per message")
    parser.add_argument("--concurrency", type=int, default=None, help="default: NOTIFICATION_CONCURRENCY")
    parser.add_argument("--batch", type=int, default=None, help="claim size; default: the sender's")
    args = parser.parse_args()
    # The sender imports ``slow_transport`` by name (a second copy of this module): it reads the env.
    os.environ["NOTIFY_BENCH_DELAY"] = str(args.delay)
    if args.concurrency is not None:
        os.environ["NOTIFICATION_CONCURRENCY"] = str(args.concurrency)

    import django

    django.setup()
    from django.conf import settings
    from django.utils import timezone

    from commerce.services.notifications import notification_send_due

    now = timezone.now()
    queue(args.count, now)
    kwargs = {"batch_size": args.batch} if args.batch else {}
    started = time.perf_counter()
    sent = notification_send_due(now=now, **kwargs)
    seconds = time.perf_counter() - started
    concurrency = settings.NOTIFICATION_CONCURRENCY
    floor = args.delay * sent / max(1, concurrency)
    print(
        f"sent {sent} in {seconds:.2f} s at concurrency {concurrency}: {sent / seconds:.0f} messages/s "
        f"(goal {GOAL_PER_SECOND}/s; floor {floor:.2f} s = {sent / floor if floor else 0:.0f}/s; "
        f"ratio {seconds / floor if floor else 0:.1f})"
    )


if __name__ == "__main__":
    main()
