"""Hot reads as SQL built once per process, their rows turned into model instances as the ORM would.

Django compiles a queryset's SQL on every call (about 1 ms of CPU for a join); the few reads
that run on every checkout or member page keep their SQL in a ``functools.cache`` instead. Each
joined model is named by an alias; ``joined_columns`` lists their columns in the order
``joined_instances`` reads them back.
"""

from django.db import connection
from django.db.models import Model


def joined_columns(joined: tuple[tuple[str, type[Model]], ...]) -> str:
    """``alias.column, ...`` of every concrete field of each ``(alias, model)``."""
    quote = connection.ops.quote_name
    return ", ".join(
        f"{alias}.{quote(field.column)}" for alias, model in joined for field in model._meta.concrete_fields
    )


def joined_instances(row: tuple, joined: tuple[tuple[str, type[Model]], ...]) -> list[Model | None]:
    """One instance per ``(alias, model)`` from a row of ``joined_columns``; None for a model whose
    primary key is NULL (an outer join found nothing). Values go through the fields' converters."""
    instances, start = [], 0
    for _alias, model in joined:
        fields = model._meta.concrete_fields
        values = [
            field.from_db_value(value, None, connection) if hasattr(field, "from_db_value") else value
            for field, value in zip(fields, row[start : start + len(fields)], strict=True)
        ]
        start += len(fields)
        pk = values[fields.index(model._meta.pk)]
        instances.append(
            None if pk is None else model.from_db(connection.alias, [f.attname for f in fields], values)
        )
    return instances
