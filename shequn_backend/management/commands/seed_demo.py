from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from commerce import demo as commerce_demo
from members import demo as members_demo


def demo_steps():
    """Each app's demo steps, in dependency order (members, commerce, trust)."""
    return [*members_demo.STEPS, *commerce_demo.STEPS, *jobs_demo_steps()]


def jobs_demo_steps():
    """Run the scheduled jobs once over the demo: commissions settle, reminders appear. Idempotent."""
    from shequn_backend.jobs import JOBS

    def run(ctx) -> None:
        from django.utils import timezone

        for name in ("settle_commissions", "renewal_reminders", "repurchase_reminders", "repurchase_rates"):
            JOBS[name].run(timezone.now())

    return [("commissions and reminders", run)]


class Command(BaseCommand):
    help = "Load demo users, communities, products and orders. Idempotent: safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--scale", action="store_true", help="Load synthetic data at scale instead.")
        parser.add_argument("--members", type=int, default=100_000, help="With --scale: members to load.")
        parser.add_argument(
            "--orders", type=int, default=1_000_000, help="With --scale: paid orders to load."
        )
        parser.add_argument("--seed", type=int, default=1, help="With --scale: the random seed (repeatable).")

    def handle(self, *args, **options):
        if options["scale"]:
            return self.handle_scale(
                members=options["members"], orders=options["orders"], seed=options["seed"]
            )
        ctx = members_demo.DemoContext(settle_entry=commerce_demo.settle_entry)
        steps = demo_steps()
        with tqdm(total=len(steps), desc="seed_demo", unit="step", file=self.stderr._out) as bar:
            for name, step in steps:
                bar.set_postfix_str(name)
                if getattr(step, "own_transactions", False):  # services with durable transactions
                    step(ctx)
                else:
                    with transaction.atomic():
                        step(ctx)
                bar.update(1)
        self.stdout.write(self.style.SUCCESS("Demo data is ready. Logins:"))
        for username, password, who in ctx.logins:
            self.stdout.write(f"  {username:<14} {password:<16} {who}")

    def handle_scale(self, *, members: int, orders: int, seed: int) -> None:
        import time

        from commerce.scale import scale_load

        started = time.perf_counter()
        report = scale_load(
            members=members, orders=orders, seed=seed, log=lambda line: self.stderr.write(line)
        )
        elapsed = time.perf_counter() - started
        counts = ", ".join(f"{name} {count}" for name, count in report.counts.items())
        self.stdout.write(self.style.SUCCESS(f"Scale data loaded in {elapsed:.1f}s: {counts}"))
