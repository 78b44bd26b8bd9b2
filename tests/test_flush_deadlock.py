"""The test harness's flush outlasts a deadlock with a statement still running elsewhere (tests/conftest.py,
_flush_outlasting_deadlocks): otherwise one test's rows reach the next as duplicate keys."""
from __future__ import annotations

import threading
import time

import pytest
from django.core.management.color import no_style
from django.db import connection, connections

from quiz.models import Check, Item

pytestmark = pytest.mark.django_db(transaction=True)


def _flush_waiting() -> bool:
    """Whether a TRUNCATE is waiting for a lock."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                       ["TRUNCATE%"])
        return bool(cursor.fetchone()[0])


def test_a_flush_crossing_a_join_is_retried_not_failed() -> None:
    """The crossing of tests/conftest.py's story, made certain: a reader holds the item table and then asks for
    the checks table, which the flush took first. PostgreSQL aborts the flush (it waited longer); the retry
    empties both tables once the reader is done."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite locks the whole file: no statement can cross another")
    tables = [Check._meta.db_table, Item._meta.db_table]  # the checks first: the order the reader will cross
    flush_sql = connection.ops.sql_flush(no_style(), tables, allow_cascade=True)
    reader_done = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(f"SELECT count(*) FROM {Item._meta.db_table}")  # holds the item table
                deadline = time.monotonic() + 10
                while not _flush_waiting() and time.monotonic() < deadline:
                    time.sleep(0.02)
                cursor.execute(f"SELECT count(*) FROM {Check._meta.db_table}")  # waits on the flush: the cycle
                cursor.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - reported to the test's thread below
            errors.append(exc)
        finally:
            other.close()
            connections["default"].close()
            reader_done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the reader holds its table before the flush starts
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                           " WHERE c.relname = %s AND l.pid <> pg_backend_pid()", [Item._meta.db_table])
            if cursor.fetchone()[0]:
                break
        time.sleep(0.02)
    connection.ops.execute_sql_flush(flush_sql)
    thread.join(30)
    assert reader_done.is_set() and not errors, errors
    assert not Item.objects.exists() and not Check.objects.exists()
