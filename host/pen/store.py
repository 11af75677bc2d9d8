"""The CTB on disk: SQLite (stdlib) in WAL mode, the embedded default.

Two tables hold the CTB: `records` (every accepted record, exact bytes, in
acceptance order) and `state` (the validator's derived state, CBOR values).
Every batch is validated by pen_protocol.ctb over an overlay and written in one
transaction, so a crash leaves either the whole batch or none of it, and a
rejected batch writes nothing. `local` holds this node's own bookkeeping
(serial counters, sync marks), which is not part of the replicated CTB.
"""
import sqlite3
import time
from pathlib import Path

from pen_protocol import cbor, ctb, records as R

SCHEMA_VERSION = 2

# Each entry migrates from version i to i+1. Never edit a released entry.
MIGRATIONS = [
    """
    CREATE TABLE records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id BLOB NOT NULL UNIQUE,
        type INTEGER NOT NULL,
        token BLOB,
        raw BLOB NOT NULL,
        received REAL NOT NULL
    );
    CREATE INDEX records_token ON records(token);
    CREATE INDEX records_type ON records(type);
    CREATE TABLE state (key BLOB PRIMARY KEY, value BLOB NOT NULL);
    """,
    """
    CREATE TABLE local (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
]


class BatchRejected(Exception):
    """A batch with a rejected record: nothing was stored."""

    def __init__(self, index, verdict):
        Exception.__init__(self, "record %d rejected: %s%s" % (
            index, verdict.reason, (" (" + verdict.detail + ")") if verdict.detail else ""))
        self.index = index
        self.verdict = verdict


class SQLiteCTB:
    def __init__(self, path, clock=time.time):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.clock = clock
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self):
        self.db.close()

    # -- schema -----------------------------------------------------------

    def _migrate(self):
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError("CTB file schema %d is newer than this Pen (%d)" % (version, SCHEMA_VERSION))
        while version < SCHEMA_VERSION:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for stmt in MIGRATIONS[version].split(";"):
                    if stmt.strip():
                        self.db.execute(stmt)
                version += 1
                self.db.execute("PRAGMA user_version=%d" % version)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def schema_version(self):
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    # -- the State interface the validator reads ----------------------------

    def get(self, key):
        row = self.db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return cbor.loads(row[0]) if row else None

    def get_record(self, rid):
        row = self.db.execute("SELECT raw FROM records WHERE id=?", (rid,)).fetchone()
        return bytes(row[0]) if row else None

    # -- writing --------------------------------------------------------------

    def submit(self, raws):
        """Validate and store a batch atomically. Returns the verdicts; raises
        BatchRejected (nothing stored) if any record is rejected."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            ov, verdicts = ctb.apply_batch(self, list(raws))
            for i, v in enumerate(verdicts):
                if v.code == ctb.REJECTED:
                    raise BatchRejected(i, v)
            self._write(ov)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return verdicts

    def _write(self, ov):
        now = self.clock()
        self.db.executemany(
            "INSERT INTO records(id, type, token, raw, received) VALUES (?,?,?,?,?)",
            [(r.id, r.type, r.token_ref, r.raw, now) for r in ov.added])
        self.db.executemany(
            "INSERT INTO state(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            [(k, cbor.dumps(v)) for k, v in ov.kv.items()])

    # -- reading --------------------------------------------------------------

    def count(self):
        return self.db.execute("SELECT COUNT(*) FROM records").fetchone()[0]

    def counts_by_type(self):
        return {R.NAMES.get(t, str(t)): n for t, n in
                self.db.execute("SELECT type, COUNT(*) FROM records GROUP BY type ORDER BY type")}

    def records(self, since=0, types=None):
        """(seq, raw) in acceptance order."""
        q = "SELECT seq, raw FROM records WHERE seq>?"
        args = [since]
        if types:
            q += " AND type IN (%s)" % ",".join("?" * len(types))
            args += list(types)
        for seq, raw in self.db.execute(q + " ORDER BY seq", args):
            yield seq, bytes(raw)

    def record_ids(self):
        return [bytes(r[0]) for r in self.db.execute("SELECT id FROM records")]

    def token_history(self, ref):
        return [bytes(r[0]) for r in self.db.execute("SELECT raw FROM records WHERE token=? ORDER BY type, seq", (ref,))]

    def state_prefix(self, prefix):
        """(key, value) for state keys starting with prefix."""
        hi = prefix[:-1] + bytes((prefix[-1] + 1,))
        for k, v in self.db.execute("SELECT key, value FROM state WHERE key>=? AND key<? ORDER BY key", (prefix, hi)):
            yield bytes(k), cbor.loads(v)

    def state_digest(self):
        """SHA-256 over all state and record ids, in key order: equal digests
        mean identical CTBs (used to prove peers converged)."""
        import hashlib
        h = hashlib.sha256()
        for k, v in self.db.execute("SELECT key, value FROM state ORDER BY key"):
            h.update(bytes(k) + b"\x00" + bytes(v))
        for (i,) in self.db.execute("SELECT id FROM records ORDER BY id"):
            h.update(bytes(i))
        return h.hexdigest()

    # -- local bookkeeping ----------------------------------------------------

    def local_get(self, key, default=None):
        row = self.db.execute("SELECT value FROM local WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def local_set(self, key, value):
        self.db.execute("INSERT INTO local(key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                        (key, str(value)))

    def next_serial(self, kid, kind):
        """A fresh serial for a ref this node's key is about to make."""
        key = "serial:%s:%s" % (kid.hex(), kind)
        n = int(self.local_get(key, "0")) + 1
        self.local_set(key, n)
        return n
