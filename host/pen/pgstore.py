"""The CTB in PostgreSQL (psycopg 3), for nodes that outgrow one file.

Same tables, semantics and digest as pen.store.SQLiteCTB: both are
pen.store.SQLStore, which holds the batch logic; this module only supplies
the connection, placeholders, transactions and migrations. Selected by a
postgresql:// URL (`pen ... --db postgresql://...`).

Writers exclude each other with a transaction-scoped advisory lock: the
validator reads state and then writes what it derived, so two node processes
sharing one database must not interleave batches (SQLite gets the same from
BEGIN IMMEDIATE).
"""
import time

import psycopg

from pen.store import SQLStore, SCHEMA_VERSION

# pg_advisory_xact_lock key that serialises CTB writers ("PENCTB" in ASCII)
WRITER_LOCK = 0x50454E435442

# Each entry migrates from version i to i+1, matching pen.store.MIGRATIONS
# version for version. Never edit a released entry.
MIGRATIONS = [
    """
    CREATE TABLE records (
        seq BIGSERIAL PRIMARY KEY,
        id BYTEA NOT NULL UNIQUE,
        type SMALLINT NOT NULL,
        token BYTEA,
        raw BYTEA NOT NULL,
        received DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX records_token ON records(token);
    CREATE INDEX records_type ON records(type);
    CREATE TABLE state (key BYTEA PRIMARY KEY, value BYTEA NOT NULL);
    """,
    """
    CREATE TABLE local (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    CREATE TABLE set_aside (
        id BYTEA PRIMARY KEY,
        raw BYTEA NOT NULL,
        seq BIGINT NOT NULL,
        reason TEXT NOT NULL,
        rules INTEGER NOT NULL,
        at DOUBLE PRECISION NOT NULL
    );
    """,
    # 4: as pen.store.MIGRATIONS[3], the type index keeps only the rare types
    """
    DROP INDEX records_type;
    CREATE INDEX records_rare_type ON records(type) WHERE type NOT BETWEEN 8 AND 11;
    """,
]


# Rows from which a batch's records go by COPY rather than executemany.
COPY_MIN_ROWS = 64


class PostgresCTB(SQLStore):
    _held_errors = (psycopg.errors.UniqueViolation,)

    def __init__(self, url, clock=time.time):
        self.path = url
        self.db = psycopg.connect(url, autocommit=True)
        self._init_common(clock)
        self._sql = {}
        self._top = -1  # highest record seq this connection knows of (see _changed_elsewhere)
        self._migrate()
        self._check_rules()

    def close(self):
        self.db.close()

    # -- the database ---------------------------------------------------------

    def _q(self, sql):
        q = self._sql.get(sql)
        if q is None:
            q = self._sql[sql] = sql.replace("%", "%%").replace("?", "%s")
        return q

    def _one(self, sql, args):
        return self.db.execute(self._q(sql), args).fetchone()

    def _all(self, sql, args):
        return self.db.execute(self._q(sql), args).fetchall()

    def _many(self, sql, rows):
        if rows:
            with self.db.cursor() as cur:
                cur.executemany(self._q(sql), rows)

    def _exec(self, sql, args):
        self.db.execute(self._q(sql), args)

    def _insert_records(self, rows):
        """One COPY stream for a batch's records instead of an INSERT each:
        the write phase fell from 12.3-12.9 to 7.8-8.0 us of this process's
        CPU a record (pen bench ingest --phases --db, docs/node.md). Rows keep
        their order, so seq is still the acceptance order. A few rows (a
        group of single-record uploads, its receipts) go by executemany:
        a COPY is a statement and a stream of its own."""
        if len(rows) < COPY_MIN_ROWS:
            SQLStore._insert_records(self, rows)
        else:
            with self.db.cursor() as cur, cur.copy("COPY records (id, type, token, raw, received) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)

    def _begin(self):
        self.db.execute("BEGIN")
        self.db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))

    def _commit(self):
        self.db.execute("COMMIT")

    def _rollback(self):
        self.db.execute("ROLLBACK")

    # Every state change comes with new records, and every writer holds the
    # advisory lock, so the highest record seq tells whether anyone else
    # committed since this connection last did: if not, the decoded-state
    # cache is still right.
    def _changed_elsewhere(self):
        top = self.db.execute("SELECT max(seq) FROM records").fetchone()[0]
        changed = top != self._top
        self._top = top
        return changed

    def _wrote(self):
        self._top = self.db.execute("SELECT max(seq) FROM records").fetchone()[0]

    # -- schema -----------------------------------------------------------

    def _migrate(self):
        self._begin()
        try:
            self.db.execute("CREATE TABLE IF NOT EXISTS pen_schema (version INTEGER NOT NULL)")
            version = self.schema_version()
            if version > SCHEMA_VERSION:
                raise RuntimeError("CTB database schema %d is newer than this Pen (%d)" % (version, SCHEMA_VERSION))
            if version == 0:
                self.db.execute("INSERT INTO pen_schema(version) VALUES (0)")
            while version < SCHEMA_VERSION:
                for stmt in MIGRATIONS[version].split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                version += 1
                self.db.execute("UPDATE pen_schema SET version=%s", (version,))
            self._commit()
        except BaseException:
            self._rollback()
            raise

    def schema_version(self):
        row = self.db.execute("SELECT version FROM pen_schema").fetchone()
        return row[0] if row else 0
