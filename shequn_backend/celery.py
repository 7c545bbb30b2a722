"""The Celery application: broker from settings, tasks discovered per app, beat from the apps' jobs."""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery, Task
from celery._state import _set_task_join_will_block, task_join_will_block

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn_backend.settings")


class _EagerRuns:
    """Eager runs in progress across this process's threads.

    Celery's eager ``apply_async`` denies ``result.get()`` while the task runs
    by saving, setting and restoring one process-wide flag. Runs interleaving
    in threads (the threaded embedded server, the concurrency tests) restore
    each other's saved value and can leave the flag set for good; every later
    ``result.get()`` in the process then fails with "Never call result.get()
    within a task". Here the flag is put back as it was when the last run ends.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._before = False

    @contextmanager
    def run(self) -> Iterator[None]:
        with self._lock:
            if not self._running:
                self._before = task_join_will_block()
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if not self._running:
                    _set_task_join_will_block(self._before)


_eager_runs = _EagerRuns()


class ShequnTask(Task):
    """Our tasks' base: eager runs from many threads leave Celery's join guard as they found it."""

    def apply_async(self, *args, **kwargs):
        if not self.app.conf.task_always_eager:
            return super().apply_async(*args, **kwargs)
        with _eager_runs.run():
            return super().apply_async(*args, **kwargs)


app = Celery("shequn_backend", task_cls=ShequnTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule_the_declared_jobs(sender: Celery, **kwargs) -> None:
    """Beat runs the jobs the apps declare. Worker and beat finalize the app after Django is set
    up (the settings cannot import the apps), and beat reads its schedule only after that."""
    from shequn_backend.jobs import beat_schedule

    sender.conf.beat_schedule = beat_schedule()
