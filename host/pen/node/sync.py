"""Peer sync over HTTP: reconcile record ids with a peer (pen.sync's
sans-IO Reconciler; this node initiates), then pull the records we lack and
push the ones the peer lacks, each in type (dependency) order, in batches,
every record through the one validator on the receiving side.

Convergence: the CTB's derived state is a function of the set of records
(pen_protocol.ctb), so two nodes that end a sync holding the same set hold
the same state. A conflicting record (double spend, double vote) arrives as
an ordinary record and each side derives the same CONFLICT evidence from it;
evidence a peer derived from another pair is itself a record and syncs too.

A refused batch names every refused record (pen.peering.refused_records),
all set aside at once. A record the receiver rejects for a missing dependency (ctb.DEPENDENCY: a
member certified by a council whose admission comes later in type order) is
deferred and sent again after the others while that makes progress; any other
rejection is final for this sync and counted as refused.
"""
import sqlite3
import time

from pen.node.core import MAX_FETCH_IDS
from pen.peering import refused_records
from pen.sync import Reconciler
from pen_protocol import ctb, records as R

BATCH = 500  # records per submit: ~50 KB, half the node's MAX_BATCH_RECORDS


class _Local:
    """The node itself as the receiving side of a pull (no receipts: the
    node that took the upload signs those, not every replica)."""

    def __init__(self, node):
        self.node = node

    def submit(self, raws):
        return self.node.submit(raws, receipts=False)


class Staging:
    """Records on their way to a receiver, in a private temporary SQLite
    file, read back in type (dependency) order: a sync that moves a million
    records holds one batch in memory, not all of them."""

    def __init__(self):
        self.db = sqlite3.connect("")  # "": a temporary file, deleted on close
        self.db.execute("CREATE TABLE staged (type INTEGER NOT NULL, id BLOB PRIMARY KEY, raw BLOB NOT NULL)")

    def add(self, recs):
        """Records (parsed) to send; one of an id is kept."""
        self.db.executemany("INSERT OR IGNORE INTO staged(type, id, raw) VALUES (?,?,?)",
                            [(r.type, r.id, r.raw) for r in recs])

    def __len__(self):
        return self.db.execute("SELECT COUNT(*) FROM staged").fetchone()[0]

    def batches(self, size):
        """Lists of (id, raw), in type then id order."""
        cur = self.db.execute("SELECT id, raw FROM staged ORDER BY type, id")
        while True:
            rows = cur.fetchmany(size)
            if not rows:
                return
            yield [(bytes(i), bytes(r)) for i, r in rows]

    def close(self):
        self.db.close()


def deliver(staged, peer, batch=BATCH, advance=None):
    """Submit records to peer (anything with submit(raws) -> the bridge's
    peer dict) in type order and batches. staged: a Staging, or a list of
    record bytes. Returns (taken, deferred, refused): records the peer took
    (accepted/duplicate/conflict), records still lacking a dependency, and
    {id: reason} of final rejections."""
    if not isinstance(staged, Staging):
        raws, staged = staged, Staging()
        staged.add(R.parse(r) for r in raws)
    taken = 0
    refused = {}

    def send(todo):
        """Send (id, raw) pairs in batches; returns (sent any, deferred pairs)."""
        nonlocal taken
        deferred = []
        progress = False
        i = 0
        while i < len(todo):
            chunk = todo[i:i + batch]
            res = peer.submit([raw for _, raw in chunk])
            if res["ok"]:
                taken += len(chunk)
                progress = True
                i += len(chunk)
                if advance is not None:
                    advance(len(chunk))
                continue
            # nothing of the chunk was stored: set every refused record aside, resend the rest
            out = dict(refused_records(res))
            for j in sorted(out, reverse=True):
                bad = todo.pop(i + j)
                if out[j] in ctb.DEPENDENCY:
                    deferred.append(bad)
                else:
                    refused[bad[0]] = out[j]
                    if advance is not None:
                        advance(1)
        return progress, deferred

    deferred = []
    progress = False
    for chunk in staged.batches(batch):
        p, d = send(chunk)
        progress = progress or p
        deferred += d
    # what waited for a dependency goes again while passes make progress
    while deferred and progress:
        progress, deferred = send(deferred)
    return taken, len(deferred), refused


def _asked_for(raws, ids):
    """Only well-formed records with ids we asked for (and each once), parsed:
    a peer cannot slip in more than the reconciliation said we lack. A
    malformed one is dropped here; the ids left unserved count as backlog."""
    want = set(ids)
    out = []
    for raw in raws:
        try:
            rec = R.parse(raw)
        except R.RecordError:
            continue
        if rec.id in want:
            want.discard(rec.id)
            out.append(rec)
    return out


def sync_with(node, client, progress=None, batch=BATCH):
    """One full sync with the peer behind client. Returns a dict of what
    happened (also stored as the peer's status on this node). Raises
    PeerUnavailable / NodeError / SyncError after recording the failure."""
    started = node.clock()
    status = node.peer_status(client.url)
    status["last_attempt"] = started
    t0 = time.perf_counter()
    b0 = client.sent_bytes + client.received_bytes
    try:
        node.refresh()
        with node.lock:
            rec = Reconciler(node.index, initiator=True)
        msg = rec.start()
        session = None
        trips = 0
        while msg is not None:
            reply, session = client.sync(msg, session)
            trips += 1
            msg = rec.receive(reply)
        we_lack, they_lack = rec.result()
        recon_bytes = client.sent_bytes + client.received_bytes - b0
        task = None
        if progress is not None:
            task = progress.add_task("sync " + client.url, total=len(we_lack) + len(they_lack))

        def advance(n):
            if task is not None:
                progress.advance(task, n)
        pulled = Staging()
        try:
            for i in range(0, len(we_lack), MAX_FETCH_IDS):
                part = we_lack[i:i + MAX_FETCH_IDS]
                pulled.add(_asked_for(client.fetch(part), part))
            n_pulled = len(pulled)
            got, deferred_in, refused_in = deliver(pulled, _Local(node), batch, advance)
        finally:
            pulled.close()
        mine = Staging()
        try:
            for i in range(0, len(they_lack), MAX_FETCH_IDS):
                mine.add(R.parse(raw) for raw in node.fetch_all(they_lack[i:i + MAX_FETCH_IDS]))
            sent, deferred_out, refused_out = deliver(mine, client, batch, advance)
        finally:
            mine.close()
    except Exception as e:
        status["last_error"] = "%s: %s" % (type(e).__name__, e)
        node.set_peer_status(client.url, status)
        raise
    result = {
        "peer": client.url, "mode": rec.mode, "round_trips": trips, "reconcile_bytes": recon_bytes,
        "bytes": client.sent_bytes + client.received_bytes - b0,
        "we_lacked": len(we_lack), "they_lacked": len(they_lack),
        "pulled": got, "pushed": sent,
        "backlog": deferred_in + deferred_out + len(we_lack) - n_pulled,
        "refused": len(refused_in) + len(refused_out),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    status.update(result)
    status["last_ok"] = started
    status["last_error"] = None
    node.set_peer_status(client.url, status)
    return result
