"""The data the migrations ship (the category tree, the trust lexicon), put back after flushes.

Live-server and other committing tests flush the database, and a reused test
database (--reuse-db) may start a session without the migrations' rows; both
loaders are idempotent.
"""

from importlib import import_module

from django.apps import apps


def load_shipped_data() -> None:
    import_module("commerce.migrations.0002_default_categories").load_categories(apps, None)
    import_module("trust.migrations.0002_load_lexicon").load(apps, None)
