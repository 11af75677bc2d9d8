"""The bridge's durable queues, in one SQLite file (WAL).

uplink: every record the village handed over, kept until each configured peer
has it (or has rejected it for a reason that will not change). A record is
stored before the node is told the bridge has it, so a bridge killed at any
instant loses nothing it acknowledged; ids are the primary key, so a record
handed over twice is stored once.

downlink: records to broadcast into the mesh (ACCOUNTED receipts, openings,
publications), each sent until the node confirms it, once.
"""
import sqlite3
import time
from pathlib import Path

from pen_protocol import records as R

SCHEMA = """
CREATE TABLE IF NOT EXISTS uplink (
    id BLOB PRIMARY KEY, type INTEGER NOT NULL, raw BLOB NOT NULL, received REAL NOT NULL);
CREATE TABLE IF NOT EXISTS delivered (
    id BLOB NOT NULL, peer TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT, at REAL NOT NULL,
    PRIMARY KEY (id, peer));
CREATE TABLE IF NOT EXISTS downlink (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE, raw BLOB NOT NULL,
    queued REAL NOT NULL, sent REAL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

class BridgeQueue:
    def __init__(self, path, clock=time.time):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        self.clock = clock

    def close(self):
        self.db.close()

    # -- uplink ---------------------------------------------------------------

    def accept(self, raw):
        """Store a record from the village; returns its id (durable on
        return). Raises records.RecordError for malformed bytes (store nothing)."""
        rec = R.parse(raw)
        self.db.execute("INSERT OR IGNORE INTO uplink(id, type, raw, received) VALUES (?,?,?,?)",
                        (rec.id, rec.type, rec.raw, self.clock()))
        return rec.id

    def has(self, rid):
        return self.db.execute("SELECT 1 FROM uplink WHERE id=?", (rid,)).fetchone() is not None

    def pending(self, peer, limit=500):
        """Records not yet delivered to peer, in dependency (type) order."""
        rows = self.db.execute(
            "SELECT u.id, u.raw FROM uplink u LEFT JOIN delivered d ON d.id=u.id AND d.peer=? "
            "WHERE d.id IS NULL ORDER BY u.type, u.received LIMIT ?", (peer, limit)).fetchall()
        return [(bytes(i), bytes(r)) for i, r in rows]

    def mark(self, peer, outcomes, down=()):
        """outcomes: [(id, outcome, reason)], outcome accepted/duplicate/conflict/rejected, and the receipts
        the peer returned for them (queued for the downlink), in one transaction: a bridge killed between
        the two never has a batch marked uploaded with its receipts lost."""
        now = self.clock()
        down = [R.parse(raw) for raw in down]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT OR REPLACE INTO delivered(id, peer, outcome, reason, at) VALUES (?,?,?,?,?)",
                                [(i, peer, o, r, now) for i, o, r in outcomes])
            self.db.executemany("INSERT OR IGNORE INTO downlink(id, raw, queued) VALUES (?,?,?)",
                                [(rec.id, rec.raw, now) for rec in down])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def backlog(self, peer):
        return self.db.execute(
            "SELECT COUNT(*) FROM uplink u LEFT JOIN delivered d ON d.id=u.id AND d.peer=? WHERE d.id IS NULL",
            (peer,)).fetchone()[0]

    def outcomes(self, peer):
        return dict(self.db.execute("SELECT outcome, COUNT(*) FROM delivered WHERE peer=? GROUP BY outcome", (peer,)))

    def rejected(self, peer):
        return [(bytes(i), r) for i, r in self.db.execute(
            "SELECT id, reason FROM delivered WHERE peer=? AND outcome='rejected'", (peer,))]

    # -- downlink -------------------------------------------------------------

    def queue_down(self, raw):
        rec = R.parse(raw)
        self.db.execute("INSERT OR IGNORE INTO downlink(id, raw, queued) VALUES (?,?,?)", (rec.id, rec.raw, self.clock()))
        return rec.id

    def next_down(self, limit=16):
        return [(bytes(i), bytes(r)) for i, r in self.db.execute(
            "SELECT id, raw FROM downlink WHERE sent IS NULL ORDER BY seq LIMIT ?", (limit,))]

    def mark_sent(self, rid):
        self.db.execute("UPDATE downlink SET sent=? WHERE id=?", (self.clock(), rid))

    def was_sent(self, rid):
        row = self.db.execute("SELECT sent FROM downlink WHERE id=?", (rid,)).fetchone()
        return row is not None and row[0] is not None

    def down_backlog(self):
        return self.db.execute("SELECT COUNT(*) FROM downlink WHERE sent IS NULL").fetchone()[0]

    # -- bookkeeping ------------------------------------------------------------

    def meta_get(self, key, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def meta_set(self, key, value):
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?,?)", (key, str(value)))

    def status(self, peers):
        return {
            "uplink_records": self.db.execute("SELECT COUNT(*) FROM uplink").fetchone()[0],
            "peers": {p: {"backlog": self.backlog(p), "outcomes": self.outcomes(p),
                          "last_upload": self.meta_get("last_upload:" + p)} for p in peers},
            "downlink_backlog": self.down_backlog(),
        }
