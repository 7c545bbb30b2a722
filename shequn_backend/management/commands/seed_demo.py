from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from commerce import demo as commerce_demo
from members import demo as members_demo


def demo_steps():
    """Each app's demo steps, in dependency order (members, commerce, trust)."""
    return [*members_demo.STEPS, *commerce_demo.STEPS]


class Command(BaseCommand):
    help = "Load demo users, communities, products and orders. Idempotent: safe to run again."

    def handle(self, *args, **options):
        ctx = members_demo.DemoContext()
        steps = demo_steps()
        with tqdm(total=len(steps), desc="seed_demo", unit="step", file=self.stderr._out) as bar:
            for name, step in steps:
                bar.set_postfix_str(name)
                with transaction.atomic():
                    step(ctx)
                bar.update(1)
        self.stdout.write(self.style.SUCCESS("Demo data is ready. Logins:"))
        for username, password, who in ctx.logins:
            self.stdout.write(f"  {username:<14} {password:<16} {who}")
