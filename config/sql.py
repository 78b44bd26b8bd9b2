"""Hand-written SQL for the few statements every graded submission runs, and its rows made values and model
instances the way Django's own queries make them.

Why: on a submission's path Django spends 1 to 4 ms of CPU building and compiling each query, five to ten times
what the database takes to run it (issue 14: measured with py-spy and per-call CPU on this machine). These
statements run once or twice per submission, their shape never changes, and only their values do, so they are
written once as SQL. Everything else stays on the ORM. The SQL here is the subset PostgreSQL and SQLite (>= 3.35,
for RETURNING) share; what differs (FOR UPDATE) is asked of the connection's features.

Every value is a bound parameter (%s); only table and column names, taken from the models, go into the text.
Values go in through the field they are compared with or stored in (`param`), so a datetime or JSON is sent as
Django would send it; columns come back through the field they were read from (`row`, `instance`), so SQLite's
text datetimes and integer booleans come back as Django would give them.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connections
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


# table, columns and column are cached: a statement's text is put together at each call, its pieces once.
@cache
def table(model: type[Model], alias: str | None = None) -> str:
    """The model's table for a FROM or an UPDATE, quoted, with an alias when given."""
    name = connections["default"].ops.quote_name(model._meta.db_table)
    return f"{name} {alias}" if alias else name


@cache
def columns(model: type[Model], alias: str | None = None) -> str:
    """Every concrete column of the model, in field order (what `instance` reads), for a SELECT or RETURNING."""
    quote = connections["default"].ops.quote_name
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + quote(_column(field)) for field in model._meta.concrete_fields)


@cache
def column(model: type[Model], name: str, alias: str | None = None) -> str:
    """One field's column, quoted (and qualified by the alias, when given)."""
    field: Field = model._meta.get_field(name)  # type: ignore[assignment]  # a concrete field, not a relation's far end
    quoted = connections["default"].ops.quote_name(_column(field))
    return f"{alias}.{quoted}" if alias else quoted


def _column(field: Field) -> str:
    assert field.column is not None, f"{field} has a column"
    return field.column


def param(model: type[Model], name: str, value: Any, using: str = "default") -> Any:
    """A value as the model's field `name` sends it to the database (a datetime on SQLite: text; JSON: adapted)."""
    field: Field = model._meta.get_field(name)  # type: ignore[assignment]
    return field.get_db_prep_save(value, connections[using])


def _converters(field: Field, connection: Any) -> tuple[Any, list[Any]]:
    """The field's column expression and the functions that convert what the database gives for it, as Django's
    compiler finds them; kept on the connection (its converters are bound to it), built once per field and
    thread: finding them was most of the time `row` took."""
    known = connection.__dict__.setdefault("_config_sql_converters", {})
    found = known.get(field)
    if found is None:
        expression = field.get_col(field.model._meta.db_table)
        found = known[field] = (expression, [*connection.ops.get_db_converters(expression),
                                             *expression.get_db_converters(connection)])
    return found


def row(fields: Sequence[Field | None], values: Sequence[Any], using: str = "default") -> list[Any]:
    """A row's values converted as the fields they were read from convert them (None: taken as it is)."""
    connection = connections[using]
    converted = []
    for field, value in zip(fields, values, strict=True):
        if field is not None:
            expression, converters = _converters(field, connection)
            for convert in converters:
                value = convert(value, expression, connection)
        converted.append(value)
    return converted


def instance(model: type[M], values: Sequence[Any], using: str = "default") -> M:
    """A model instance from a row of its `columns`, as if Django's own query had read it."""
    fields = model._meta.concrete_fields
    return model.from_db(using, [field.attname for field in fields], row(fields, values, using))


def prefetched(obj: Model, related_name: str, objects: Sequence[Model]) -> None:
    """Leave `objects` where `obj.<related_name>.all()` finds them without a query: Django's prefetch cache, filled
    in as prefetch_related fills it (a queryset whose results are already there), for rows a join read at once."""
    queryset = getattr(obj, related_name).get_queryset()
    queryset._result_cache = list(objects)
    queryset._prefetch_done = True
    cache = obj.__dict__.setdefault("_prefetched_objects_cache", {})
    cache[related_name] = queryset


def fetch(query: str, params: Sequence[Any], using: str = "default") -> list[tuple[Any, ...]]:
    """Run one read and return its rows, as the database gives them (convert them with `row` or `instance`)."""
    with connections[using].cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def get(model: type[M], using: str = "default", **equal: Any) -> M | None:
    """The one row whose fields equal these values (a unique lookup: a key, a slug), or None."""
    found = select(model, using=using, **equal)
    assert len(found) <= 1, f"{model.__name__} has {len(found)} rows with {equal}: get is for a unique lookup"
    return found[0] if found else None


def select(model: type[M], *, order_by: Sequence[str] = (), using: str = "default", **equal: Any) -> list[M]:
    """The rows whose fields equal these values, ordered by these fields (ascending)."""
    where, params = _where(model, equal, using)
    order = f" ORDER BY {', '.join(column(model, name) for name in order_by)}" if order_by else ""
    rows = fetch(f"SELECT {columns(model)} FROM {table(model)} WHERE {where}{order}", params, using)
    return [instance(model, values, using) for values in rows]


def exists(model: type[Model], using: str = "default", **equal: Any) -> bool:
    """Whether a row's fields equal these values."""
    where, params = _where(model, equal, using)
    return bool(fetch(f"SELECT 1 FROM {table(model)} WHERE {where} LIMIT 1", params, using))


def _where(model: type[Model], equal: dict[str, Any], using: str) -> tuple[str, list[Any]]:
    # `= NULL` matches nothing in SQL, where the ORM's filter(x=None) means IS NULL: refused rather than mistaken.
    if not equal or None in equal.values():
        raise ValueError(f"{model.__name__}: the conditions must be values to equal, at least one, none None: {equal}")
    return (" AND ".join(f"{column(model, name)} = %s" for name in equal),
            [param(model, name, value, using) for name, value in equal.items()])


def refresh(obj: M, fields: Sequence[str], using: str = "default") -> M:
    """Read these fields of the object's row again into it: refresh_from_db(fields=...), in SQL. Raises the
    model's DoesNotExist when the row is gone."""
    model = type(obj)
    chosen: list[Field] = [model._meta.get_field(name) for name in fields]  # type: ignore[misc]
    quote = connections[using].ops.quote_name
    found = fetch(f"SELECT {', '.join(quote(_column(field)) for field in chosen)} FROM {table(model)}"
                  f" WHERE {column(model, model._meta.pk.name)} = %s", [obj.pk], using)
    if not found:
        raise model.DoesNotExist(f"{model.__name__} {obj.pk} is gone")  # type: ignore[attr-defined]
    for field, value in zip(chosen, row(chosen, found[0], using), strict=True):
        setattr(obj, field.attname, value)
    return obj


def insert(obj: M, using: str = "default") -> M:
    """Store a new instance in one INSERT, as Model.save(force_insert) would: each field's pre_save (auto_now_add)
    and its database value; the key the database gave it comes back with RETURNING. No save() override and no
    signal runs: a caller does what the model's save would add (e.g. Submission.set_answer_digest)."""
    meta = obj._meta
    fields = [field for field in meta.concrete_fields if not (field.primary_key and field.db_returning)]
    connection = connections[using]
    values = [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table(type(obj))} ({', '.join(column(type(obj), f.name) for f in fields)})"
                       f" VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {column(type(obj), meta.pk.name)}",
                       values)
        obj.pk = cursor.fetchone()[0]
    obj._state.adding, obj._state.db = False, using
    return obj


def update(model: type[Model], where: dict[str, Any], values: dict[str, Any], using: str = "default") -> int:
    """Set these fields' values on the rows whose fields equal `where`'s; how many rows changed."""
    assignments = ", ".join(f"{column(model, name)} = %s" for name in values)
    conditions, condition_params = _where(model, where, using)
    with connections[using].cursor() as cursor:
        cursor.execute(f"UPDATE {table(model)} SET {assignments} WHERE {conditions}",
                       [*(param(model, name, value, using) for name, value in values.items()), *condition_params])
        return cursor.rowcount


def split(values: Sequence[Any], *models: type[Model]) -> list[Sequence[Any]]:
    """A row that reads each model's `columns` in turn (a join), cut into one part per model (for `instance`),
    then what the row reads after them."""
    parts = []
    for model in models:
        width = len(model._meta.concrete_fields)
        parts.append(values[:width])
        values = values[width:]
    return [*parts, values]
