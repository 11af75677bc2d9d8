"""The store's durable outbox: every payment it signed or relayed, from the
moment it exists until its receipt is verified. SQLite with synchronous=FULL
(fsync at every commit), so a phone that dies between signing and the node's
ack loses nothing: `StoreClient.resume()` sends what is not yet accounted.

States: signed (in the outbox, the node may not have it) -> sent (the node
took it into its custody journal) -> accounted (a receipt signed by a pinned
CTB node key came back and verified)."""
import sqlite3

SIGNED = "signed"
SENT = "sent"
ACCOUNTED = "accounted"
STATES = (SIGNED, SENT, ACCOUNTED)


class Payment:
    """One row: .id (16), .token (8), .record, .state, .receipt (bytes|None),
    .created, .updated (seconds, from the clock the client was given)."""
    __slots__ = ("id", "token", "record", "state", "receipt", "created", "updated")

    def __init__(self, id, token, record, state, receipt, created, updated):
        self.id = bytes(id)
        self.token = bytes(token)
        self.record = bytes(record)
        self.state = state
        self.receipt = bytes(receipt) if receipt is not None else None
        self.created = created
        self.updated = updated

    def __repr__(self):
        return "<Payment %s %s>" % (self.id.hex(), self.state)


class Outbox:
    def __init__(self, path):
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA journal_mode=DELETE")
        self.db.execute("CREATE TABLE IF NOT EXISTS payments (id BLOB PRIMARY KEY, token BLOB NOT NULL, "
                        "record BLOB NOT NULL, state TEXT NOT NULL, receipt BLOB, created REAL, updated REAL)")
        # receipt digests taken (pen_protocol.digest), by id, within the replay window
        self.db.execute("CREATE TABLE IF NOT EXISTS digests (id BLOB PRIMARY KEY, kid BLOB NOT NULL, "
                        "time INTEGER NOT NULL)")

    def add(self, rid, token, record, now):
        """Idempotent: the same record twice is one payment."""
        self.db.execute("INSERT OR IGNORE INTO payments VALUES (?, ?, ?, ?, NULL, ?, ?)",
                        (bytes(rid), bytes(token), bytes(record), SIGNED, now, now))
        return self.get(rid)

    def get(self, rid):
        row = self.db.execute("SELECT * FROM payments WHERE id = ?", (bytes(rid),)).fetchone()
        return Payment(*row) if row else None

    def by_token(self, token):
        return [Payment(*r) for r in self.db.execute("SELECT * FROM payments WHERE token = ?", (bytes(token),))]

    def mark(self, rid, state, now, receipt=None):
        """Moves forward only: a late 'sent' never undoes 'accounted'."""
        cur = self.get(rid)
        if cur is None or STATES.index(state) <= STATES.index(cur.state):
            return cur
        self.db.execute("UPDATE payments SET state = ?, receipt = COALESCE(?, receipt), updated = ? WHERE id = ?",
                        (state, receipt, now, bytes(rid)))
        return self.get(rid)

    def digest_problem(self, d, window_s):
        """None when the digest d (verified) may be taken, else why not:
        "replayed" (taken before) or "stale" (signed more than window_s
        before the newest digest taken from its key)."""
        if self.db.execute("SELECT 1 FROM digests WHERE id = ?", (d.id(),)).fetchone():
            return "replayed"
        newest = self.db.execute("SELECT MAX(time) FROM digests WHERE kid = ?", (d.kid,)).fetchone()[0]
        if newest is not None and d.time < newest - window_s:
            return "stale"
        return None

    def digest_taken(self, d, window_s):
        """Remember d (after the payments it names are marked: a crash in
        between leaves it to be taken again, which changes nothing); those
        older than the window are forgotten, since stale refuses them anyway."""
        self.db.execute("INSERT OR IGNORE INTO digests VALUES (?, ?, ?)", (d.id(), d.kid, d.time))
        newest = self.db.execute("SELECT MAX(time) FROM digests WHERE kid = ?", (d.kid,)).fetchone()[0]
        self.db.execute("DELETE FROM digests WHERE kid = ? AND time < ?", (d.kid, newest - window_s))

    def all(self):
        return [Payment(*r) for r in self.db.execute("SELECT * FROM payments ORDER BY created, id")]

    def open_payments(self):
        return [p for p in self.all() if p.state != ACCOUNTED]

    def close(self):
        self.db.close()
