"""The bridge's durable queues, in one SQLite file (WAL).

uplink: every record the village handed over, kept until each configured peer
has it (or has rejected it for a reason that will not change). A record is
stored before the node is told the bridge has it, so a bridge killed at any
instant loses nothing it acknowledged; ids are the primary key, so a record
handed over twice is stored once.

held: records a peer refused for a missing dependency, per peer, with the
number of tries and when the next may be (exponential back-off); after
HOLD_MAX_TRIES the record is quarantined: marked delivered with outcome
"quarantined" (kept, shown by `pen bridge status`, never sent again).

downlink: records to broadcast into the mesh (ACCOUNTED receipts, openings,
publications), each sent until the node confirms it, once.
"""
import time
from pathlib import Path

from pen import sqlwal
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
CREATE TABLE IF NOT EXISTS held (
    id BLOB NOT NULL, peer TEXT NOT NULL, tries INTEGER NOT NULL, next_at REAL NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (id, peer));
"""

# A record refused for a missing dependency waits HOLD_FIRST_S, then twice as
# long after each refusal, at most HOLD_MAX_WAIT_S: a dependency that is only
# late (a member certified before its council's admission syncs in) arrives
# within minutes; junk never does. After HOLD_MAX_TRIES refusals (~4 h of
# waiting) it is quarantined. A held record is retried only in batches of
# held records, so it never costs an honest batch a validation.
HOLD_FIRST_S = 30.0
HOLD_MAX_WAIT_S = 3600.0
HOLD_MAX_TRIES = 8

class BridgeQueue:
    def __init__(self, path, clock=time.time):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlwal.connect(path, check_same_thread=False)
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
        """Records not yet delivered to peer nor held for it, in dependency (type) order."""
        rows = self.db.execute(
            "SELECT u.id, u.raw FROM uplink u LEFT JOIN delivered d ON d.id=u.id AND d.peer=? "
            "WHERE d.id IS NULL AND NOT EXISTS (SELECT 1 FROM held h WHERE h.id=u.id AND h.peer=?) "
            "ORDER BY u.type, u.received LIMIT ?", (peer, peer, limit)).fetchall()
        return [(bytes(i), bytes(r)) for i, r in rows]

    def due(self, peer, now, limit=500):
        """Held records whose back-off is over, in dependency (type) order."""
        rows = self.db.execute(
            "SELECT u.id, u.raw FROM held h JOIN uplink u ON u.id=h.id WHERE h.peer=? AND h.next_at<=? "
            "ORDER BY u.type, u.received LIMIT ?", (peer, now, limit)).fetchall()
        return [(bytes(i), bytes(r)) for i, r in rows]

    def hold(self, peer, refused, now):
        """refused: [(id, reason)] the peer lacks a dependency for. Each waits
        (back-off) or, after HOLD_MAX_TRIES, is quarantined; in one
        transaction. Returns the ids quarantined now."""
        quarantined = []
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for rid, reason in refused:
                row = self.db.execute("SELECT tries FROM held WHERE id=? AND peer=?", (rid, peer)).fetchone()
                tries = (row[0] if row else 0) + 1
                if tries >= HOLD_MAX_TRIES:
                    self.db.execute("DELETE FROM held WHERE id=? AND peer=?", (rid, peer))
                    self.db.execute("INSERT OR REPLACE INTO delivered(id, peer, outcome, reason, at) "
                                    "VALUES (?,?,'quarantined',?,?)", (rid, peer, reason, now))
                    quarantined.append(rid)
                    continue
                wait = min(HOLD_FIRST_S * 2 ** (tries - 1), HOLD_MAX_WAIT_S)
                self.db.execute("INSERT OR REPLACE INTO held(id, peer, tries, next_at, reason) VALUES (?,?,?,?,?)",
                                (rid, peer, tries, now + wait, reason))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return quarantined

    def release(self, peer, ids=None):
        """Quarantined (and held) records of peer go again at the next round,
        their tries forgotten: all of them, or those in ids. Returns how many."""
        where, args = "peer=?", [peer]
        if ids is not None:
            ids = list(ids)
            if not ids:
                return 0
            where += " AND id IN (%s)" % ",".join("?" * len(ids))
            args += ids
        self.db.execute("BEGIN IMMEDIATE")
        try:
            n = self.db.execute("DELETE FROM delivered WHERE outcome='quarantined' AND " + where, args).rowcount
            n += self.db.execute("DELETE FROM held WHERE " + where, args).rowcount
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return n

    def held(self, peer):
        """[(id, tries, next try at, reason)] of the records held for peer."""
        return [(bytes(i), t, n, r) for i, t, n, r in self.db.execute(
            "SELECT id, tries, next_at, reason FROM held WHERE peer=? ORDER BY next_at", (peer,))]

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
            self.db.executemany("DELETE FROM held WHERE id=? AND peer=?", [(i, peer) for i, _, _ in outcomes])
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

    def rejected(self, peer, outcome="rejected"):
        """[(id, reason)] refused for good (or, outcome='quarantined', held too long)."""
        return [(bytes(i), r) for i, r in self.db.execute(
            "SELECT id, reason FROM delivered WHERE peer=? AND outcome=?", (peer, outcome))]

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
                          "held": self.db.execute("SELECT COUNT(*) FROM held WHERE peer=?", (p,)).fetchone()[0],
                          "last_upload": self.meta_get("last_upload:" + p)} for p in peers},
            "downlink_backlog": self.down_backlog(),
        }
