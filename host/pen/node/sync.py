"""Peer sync over HTTP: reconcile record ids with a peer (pen.sync's
sans-IO Reconciler; this node initiates), then pull the records we lack and
push the ones the peer lacks, each in type (dependency) order, in batches,
every record through the one validator on the receiving side.

Convergence: the CTB's derived state is a function of the set of records
(pen_protocol.ctb), so two nodes that end a sync holding the same set hold
the same state. A conflicting record (double spend, double vote) arrives as
an ordinary record and each side derives the same CONFLICT evidence from it;
evidence a peer derived from another pair is itself a record and syncs too.

A record the receiver rejects for a missing dependency (ctb.DEPENDENCY: a
member certified by a council whose admission comes later in type order) is
deferred and sent again after the others while that makes progress; any other
rejection is final for this sync and counted as refused.
"""
import time

from pen.node.core import MAX_FETCH_IDS
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


def deliver(raws, peer, batch=BATCH, advance=None):
    """Submit records to peer (anything with submit(raws) -> the bridge's
    peer dict) in type order and batches. Returns (taken, deferred,
    refused): records the peer took (accepted/duplicate/conflict), records
    still lacking a dependency, and {id: reason} of final rejections."""
    todo = sorted((R.parse(r) for r in raws), key=lambda r: (r.type, r.id))
    taken = 0
    refused = {}
    deferred = []
    while todo:
        deferred = []
        i = 0
        progress = False
        while i < len(todo):
            chunk = todo[i:i + batch]
            res = peer.submit([r.raw for r in chunk])
            if res["ok"]:
                taken += len(chunk)
                progress = True
                i += len(chunk)
                if advance is not None:
                    advance(len(chunk))
                continue
            # nothing of the chunk was stored: set the culprit aside, resend the rest
            bad = chunk[res["index"]]
            todo.pop(i + res["index"])
            if res["reason"] in ctb.DEPENDENCY:
                deferred.append(bad)
            else:
                refused[bad.id] = res["reason"]
                if advance is not None:
                    advance(1)
        if not progress:
            break
        todo, deferred = deferred, []
    return taken, len(deferred), refused


def _asked_for(raws, ids):
    """Only well-formed records with ids we asked for (and each once): a peer
    cannot slip in more than the reconciliation said we lack. A malformed
    one is dropped here; the ids left unserved count as backlog."""
    want = set(ids)
    out = []
    for raw in raws:
        try:
            rid = R.parse(raw).id
        except R.RecordError:
            continue
        if rid in want:
            want.discard(rid)
            out.append(raw)
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
        pulled = []
        for i in range(0, len(we_lack), MAX_FETCH_IDS):
            pulled += _asked_for(client.fetch(we_lack[i:i + MAX_FETCH_IDS]), we_lack[i:i + MAX_FETCH_IDS])
        got, deferred_in, refused_in = deliver(pulled, _Local(node), batch, advance)
        mine = node.fetch_all(they_lack)
        sent, deferred_out, refused_out = deliver(mine, client, batch, advance)
    except Exception as e:
        status["last_error"] = "%s: %s" % (type(e).__name__, e)
        node.set_peer_status(client.url, status)
        raise
    result = {
        "peer": client.url, "mode": rec.mode, "round_trips": trips, "reconcile_bytes": recon_bytes,
        "bytes": client.sent_bytes + client.received_bytes - b0,
        "we_lacked": len(we_lack), "they_lacked": len(they_lack),
        "pulled": got, "pushed": sent,
        "backlog": deferred_in + deferred_out + len(we_lack) - len(pulled),
        "refused": len(refused_in) + len(refused_out),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    status.update(result)
    status["last_ok"] = started
    status["last_error"] = None
    node.set_peer_status(client.url, status)
    return result
