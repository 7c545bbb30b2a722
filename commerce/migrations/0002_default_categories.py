"""Ship the default category tree (commerce/data/categories.txt) as data; owners edit it in the admin."""

from pathlib import Path

from django.db import migrations

CATEGORIES_FILE = Path(__file__).resolve().parent.parent / "data" / "categories.txt"


def read_tree(text: str) -> list[tuple[str, str]]:
    """(Chinese path, English path) pairs, parents first, in file order."""
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        zh_path, _, en_path = line.partition("\t")
        zh_parts, en_parts = zh_path.strip().split("/"), en_path.strip().split("/")
        for depth in range(1, len(zh_parts) + 1):
            zh = "/".join(zh_parts[:depth])
            if zh not in seen:
                seen.add(zh)
                rows.append((zh, "/".join(en_parts[:depth]) if len(en_parts) >= depth else ""))
    return rows


def load_categories(apps, schema_editor):
    Category = apps.get_model("commerce", "Category")
    by_path = {}
    for position, (zh_path, en_path) in enumerate(read_tree(CATEGORIES_FILE.read_text(encoding="utf-8"))):
        parent_path, _, name_zh = zh_path.rpartition("/")
        category, _ = Category.objects.get_or_create(
            path=zh_path,
            defaults={
                "name_zh": name_zh,
                "name_en": en_path.rpartition("/")[2] or name_zh,
                "parent": by_path.get(parent_path),
                "position": position,
            },
        )
        by_path[zh_path] = category


def unload_categories(apps, schema_editor):
    Category = apps.get_model("commerce", "Category")
    paths = [zh for zh, _ in read_tree(CATEGORIES_FILE.read_text(encoding="utf-8"))]
    Category.objects.filter(path__in=paths, products__isnull=True, parent__isnull=False).delete()
    Category.objects.filter(path__in=paths, products__isnull=True, children__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("commerce", "0001_initial")]

    operations = [migrations.RunPython(load_categories, unload_categories)]
