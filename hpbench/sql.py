"""Hot-path SQL: statements PostgreSQL plans once per connection, and few round trips per transaction.

PostgreSQL parses and plans every statement it is sent. For the annotation hot path that cost as much as
running it (0.7 ms to plan the task pick, against 0.1 ms to run it), and each statement, BEGIN and COMMIT
were a round trip each, every one of them two context switches on a busy machine.

- :func:`run` sends a :class:`Statement` as ``PREPARE`` the first time a connection meets it and as
  ``EXECUTE`` afterwards, and sends the steps of one call in a single round trip.
- :func:`hot_transaction` is a transaction whose ``BEGIN`` travels with its first statement, and whose
  writes that nobody reads back (:meth:`Batch.defer`) travel with the next statement or with ``COMMIT``.

On other databases (the embedded SQLite default), and inside an enclosing ``transaction.atomic`` (as in
tests), the same calls run the plain statements one by one in an ordinary atomic block.

Prepared statements belong to the database session: they outlive rolled-back transactions and end with
the connection, which is why the names prepared are remembered per connection. Do not put a
transaction-pooling proxy (PgBouncer in transaction mode) in front of a web process using these.
"""

from __future__ import annotations

import itertools
import re
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

_PLACEHOLDER = re.compile(r"%s")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


@dataclass(frozen=True)
class Statement:
    """One SQL statement with ``%s`` placeholders, and the name it is prepared under on PostgreSQL."""

    name: str
    sql: str

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"statement name {self.name!r}: use lower-case letters, digits and '_'")
        if "%" in _PLACEHOLDER.sub("", self.sql) or ";" in self.sql:
            raise ValueError(f"statement {self.name!r}: no literal '%' or ';' besides the %s placeholders")

    @property
    def arity(self) -> int:
        return self.sql.count("%s")

    def prepare_sql(self) -> str:
        """``PREPARE name AS ...`` with PostgreSQL's numbered parameters (their types are inferred)."""
        numbers = itertools.count(1)
        return f"PREPARE {self.name} AS " + _PLACEHOLDER.sub(lambda _: f"${next(numbers)}", self.sql)

    def execute_sql(self) -> str:
        return f"EXECUTE {self.name}" + (f"({', '.join(['%s'] * self.arity)})" if self.arity else "")


#: Statement names prepared on each open database connection (psycopg2's connection object, not Django's
#: wrapper: a connection pool hands one wrapper different connections, and one connection to other wrappers).
_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _prepared_names(cursor) -> set[str]:
    """The statement names prepared on the cursor's current connection (a new connection starts empty)."""
    raw = cursor.db.connection
    names = _PREPARED.get(raw)
    if names is None:
        names = _PREPARED[raw] = set()
    return names


Step = tuple[Statement, Sequence]


def run(cursor, *steps: Step) -> None:
    """Execute ``(statement, params)`` steps in order, in one round trip on PostgreSQL.

    The cursor then holds the last step's rows (earlier steps' rows are discarded, so only the last
    step may be a query whose answer matters). Raises ``ValueError`` when a step's parameter count is
    wrong, and whatever the database raises (the surrounding transaction is then aborted as usual).
    """
    for statement, params in steps:
        if len(params) != statement.arity:
            raise ValueError(f"statement {statement.name!r} takes {statement.arity} parameters, got {len(params)}")
    if cursor.db.vendor != "postgresql":
        for statement, params in steps:
            cursor.execute(statement.sql, params)
        return
    _run_postgresql(cursor, steps)


def _run_postgresql(cursor, steps: Sequence[Step], before: str = "", after: str = "") -> None:
    prepared = _prepared_names(cursor)
    for statement, _ in steps:
        if statement.name not in prepared:
            # Alone, so that a failed PREPARE leaves nothing half-known; once per connection and statement.
            cursor.execute(statement.prepare_sql())
            prepared.add(statement.name)
    texts = [before] if before else []
    texts += [statement.execute_sql() for statement, _ in steps]
    texts += [after] if after else []
    cursor.execute("; ".join(texts), [value for _, params in steps for value in params])


class Batch:
    """The statements of one :func:`hot_transaction`. ``cursor`` holds the rows of the last :meth:`run`."""

    def __init__(self, cursor, *, manual: bool) -> None:
        self.cursor = cursor
        self._manual = manual  # PostgreSQL, autocommit: BEGIN and COMMIT are ours to send
        self._begun = False
        self._deferred: list[Step] = []

    def defer(self, *steps: Step) -> None:
        """Queue writes whose answers nobody reads: they run before the next :meth:`run`'s steps, or at commit."""
        self._deferred.extend(steps)

    def run(self, *steps: Step) -> None:
        """Run the deferred steps, then ``steps``, in one round trip on PostgreSQL (the first one also BEGINs)."""
        steps = (*self._deferred, *steps)
        self._deferred = []
        if not self._manual:
            run(self.cursor, *steps)
            return
        before = "" if self._begun else "BEGIN"
        self._begun = True  # before sending: should a statement after BEGIN fail, the block must be rolled back
        _run_postgresql(self.cursor, steps, before=before)

    def _commit(self) -> None:
        steps, self._deferred = self._deferred, []
        if not self._manual:
            if steps:
                run(self.cursor, *steps)
            return
        if steps or self._begun:
            before = "" if self._begun else "BEGIN"
            self._begun = True
            _run_postgresql(self.cursor, steps, before=before, after="COMMIT")
        self._begun = False

    def _rollback(self) -> None:
        if self._manual and self._begun:
            self._begun = False
            try:
                self.cursor.execute("ROLLBACK")
            except DatabaseError:
                pass  # a broken connection: Django closes it at the end of the request or task


@contextmanager
def hot_transaction(using: str = DEFAULT_DB_ALIAS) -> Iterator[Batch]:
    """A short write transaction for hot paths: ``with hot_transaction() as batch: batch.run(...)``.

    Everything in the block commits together when it ends, deferred writes included, or rolls back when
    it raises (the exception propagates; database errors from the deferred writes surface here too).
    On PostgreSQL outside any atomic block, a next-task request is 3 round trips instead of 5.
    """
    connection = connections[using]
    if connection.vendor != "postgresql" or connection.in_atomic_block or not connection.get_autocommit():
        with transaction.atomic(using=using), connection.cursor() as cursor:
            batch = Batch(cursor, manual=False)
            yield batch
            batch._commit()
        return
    with connection.cursor() as cursor:
        batch = Batch(cursor, manual=True)
        try:
            yield batch
            batch._commit()
        except BaseException:
            batch._rollback()
            raise
