"""Prepared statements and few-round-trip transactions for hot paths (hpbench/sql.py), on PostgreSQL."""

from __future__ import annotations

import itertools

import pytest
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from psycopg2.extensions import TRANSACTION_STATUS_IDLE

from hpbench import sql
from hpbench.sql import Statement

_names = itertools.count()


def statements() -> tuple[Statement, Statement]:
    """An insert into, and a count of, a temporary table (fresh statement names: they live per connection)."""
    n = next(_names)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE IF NOT EXISTS hot_rows (id integer PRIMARY KEY)")
        cursor.execute("TRUNCATE hot_rows")
    return (
        Statement(f"test_insert_{n}", "INSERT INTO hot_rows (id) VALUES (%s)"),
        Statement(f"test_count_{n}", "SELECT count(*) FROM hot_rows WHERE id >= %s"),
    )


def rows() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM hot_rows ORDER BY id")
        return [r[0] for r in cursor.fetchall()]


def idle() -> bool:
    return connection.connection.get_transaction_status() == TRANSACTION_STATUS_IDLE


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("Bad-Name", "SELECT 1", "lower-case"),
        ("ok", "SELECT 1 WHERE 'a' LIKE '%'", "literal"),
        ("ok", "SELECT 1; SELECT 2", "literal"),
    ],
)
def test_a_statement_refuses_names_and_text_it_cannot_prepare(name, text, message):
    with pytest.raises(ValueError, match=message):
        Statement(name, text)


def test_placeholders_become_numbered_parameters():
    statement = Statement("two", "SELECT %s + %s")
    assert statement.prepare_sql() == "PREPARE two AS SELECT $1 + $2"
    assert statement.execute_sql() == "EXECUTE two(%s, %s)"


@pytest.mark.django_db
def test_a_statement_is_prepared_once_per_connection():
    insert, count = statements()
    with CaptureQueriesContext(connection) as first, connection.cursor() as cursor:
        sql.run(cursor, (insert, [1]), (count, [0]))
        assert cursor.fetchone() == (1,)
    with CaptureQueriesContext(connection) as second, connection.cursor() as cursor:
        sql.run(cursor, (insert, [2]), (count, [0]))
        assert cursor.fetchone() == (2,)
    assert [q["sql"].split(" AS ")[0] for q in first.captured_queries] == [
        f"PREPARE {insert.name}",
        f"PREPARE {count.name}",
        f"EXECUTE {insert.name}(1); EXECUTE {count.name}(0)",
    ]
    assert [q["sql"] for q in second.captured_queries] == [f"EXECUTE {insert.name}(2); EXECUTE {count.name}(0)"]


@pytest.mark.django_db
def test_what_is_prepared_belongs_to_the_database_connection_not_to_djangos_wrapper():
    # A connection pool hands one open connection to several of Django's wrappers in turn.
    insert, count = statements()
    with connection.cursor() as cursor:
        sql.run(cursor, (insert, [1]))
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    other.connection = connection.connection
    try:
        with CaptureQueriesContext(other) as captured, other.cursor() as cursor:
            sql.run(cursor, (insert, [2]), (count, [0]))
            assert cursor.fetchone() == (2,)
    finally:
        other.connection = None  # the connection stays the default wrapper's
    assert [q["sql"].split(" AS ")[0] for q in captured.captured_queries] == [
        f"PREPARE {count.name}",
        f"EXECUTE {insert.name}(2); EXECUTE {count.name}(0)",
    ]


@pytest.mark.django_db
def test_a_wrong_number_of_parameters_is_refused_before_sending():
    insert, _ = statements()
    with connection.cursor() as cursor, pytest.raises(ValueError, match="takes 1 parameters, got 2"):
        sql.run(cursor, (insert, [1, 2]))


@pytest.mark.django_db(transaction=True)
def test_begin_travels_with_the_first_statement_and_deferred_writes_with_commit():
    insert, count = statements()
    with CaptureQueriesContext(connection) as captured:
        with sql.hot_transaction() as batch:
            batch.defer((insert, [1]))
            batch.run((count, [0]))
            assert batch.cursor.fetchone() == (1,)
            batch.defer((insert, [2]), (insert, [3]))
    sent = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith("PREPARE")]
    assert sent == [
        f"BEGIN; EXECUTE {insert.name}(1); EXECUTE {count.name}(0)",
        f"EXECUTE {insert.name}(2); EXECUTE {insert.name}(3); COMMIT",
    ]
    assert rows() == [1, 2, 3] and idle()


@pytest.mark.django_db(transaction=True)
def test_an_exception_in_the_block_rolls_everything_back():
    insert, count = statements()
    with pytest.raises(RuntimeError, match="checked and refused"), sql.hot_transaction() as batch:
        batch.run((insert, [1]))
        batch.defer((insert, [2]))
        raise RuntimeError("checked and refused")
    assert idle() and rows() == []


@pytest.mark.django_db(transaction=True)
def test_a_failing_deferred_write_rolls_back_and_the_connection_stays_usable():
    insert, _ = statements()
    with pytest.raises(IntegrityError), sql.hot_transaction() as batch:
        batch.run((insert, [1]))
        batch.defer((insert, [1]))  # duplicate key, found at commit
    assert idle() and rows() == []
    with sql.hot_transaction() as batch:
        batch.defer((insert, [5]))
    assert rows() == [5]


@pytest.mark.django_db
def test_inside_an_atomic_block_it_is_a_savepoint():
    insert, _ = statements()
    with transaction.atomic():
        with sql.hot_transaction() as batch:
            batch.defer((insert, [1]))
        with pytest.raises(RuntimeError), sql.hot_transaction() as batch:
            batch.run((insert, [2]))
            raise RuntimeError("only this part")
        assert rows() == [1]
