"""A store left at an older migration, as an earlier release made it: the set-up of every migration test."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any, Callable, Iterator

import psycopg

from framework.store import postgres as pg_store
from framework.store import sqlite as sqlite_store


@contextlib.contextmanager
def store_at_migration(store_url: str, version: int) -> Iterator[tuple[Callable[..., Any], str]]:
    """Migrations 1..`version` applied to a new store at `store_url`; yields (execute, placeholder) to put old
    rows in with (`?` for SQLite, `%s` for PostgreSQL). The store's own start() then migrates the rest."""
    if store_url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_store._path_of(store_url), isolation_level=None)
        try:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at INTEGER NOT NULL)")
            for number, migration in enumerate(sqlite_store.MIGRATIONS[:version], 1):
                for statement in migration.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, 0)", (number,))
            yield conn.execute, "?"
        finally:
            conn.close()
        return
    base, schema = pg_store.split_schema(store_url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")
        for number, migration in enumerate(pg_store.MIGRATIONS[:version], 1):
            conn.execute(migration)
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
        yield conn.execute, "%s"
