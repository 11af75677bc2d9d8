"""Uploading the village's records to one CTB peer in idempotent, resumable
batches. Sans-IO: `step()` takes a peer object with `submit(raws)` and does
one round; the caller decides when (and the asyncio driver does it in a
thread, since the peer client is blocking HTTP).

Resumable: what a peer has is recorded only after the peer answered, in one
transaction; a bridge killed before that re-sends the batch, and the CTB
takes re-sent records as duplicates. Idempotent end to end.

A batch the peer refuses names the record and the reason. A reason that only
means "the peer lacks a dependency" (pen_protocol.ctb.DEPENDENCY) defers the
record to a later round; any other reason is final for that peer and is kept
for the operator (`pen bridge status`); the rest of the batch goes again.
"""
from pen.peering import PeerUnavailable  # noqa: F401  (re-exported: the bridge's callers catch it here)
from pen_protocol import ctb, records as R

MAX_BATCH = 500  # records per request: ~50 KB, well under the node's request bound


class Uploader:
    def __init__(self, queue, peer_name, batch=MAX_BATCH, on_batch=None):
        self.queue = queue
        self.peer = peer_name
        self.batch = batch
        self.on_batch = on_batch  # on_batch(peer, sent so far this round, backlog left): progress display
        self.deferred = {}  # id -> reason, retried every round

    def step(self, client):
        """Upload until the peer has everything it can take now. Returns
        (sent, receipts): records the peer took, and the ACCOUNTED receipts
        it returned (raw bytes). Raises PeerUnavailable when the peer cannot
        be reached; what was confirmed before that stays confirmed."""
        sent = 0
        receipts = []
        skip = {}  # deferred this round: the peer lacks a dependency
        while True:
            todo = [x for x in self.queue.pending(self.peer, self.batch + len(skip)) if x[0] not in skip]
            batch = todo[:self.batch]
            if not batch:
                break
            res = client.submit([raw for _, raw in batch])
            if res["ok"]:
                outs = [(rid, v["code"], v.get("reason", "")) for (rid, _), v in zip(batch, res["verdicts"])]
                got = list(res.get("receipts", [])) + self._earlier_receipts(client, batch, res["verdicts"])
                self.queue.mark(self.peer, outs, got)
                sent += len(batch)
                receipts += got
                if self.on_batch is not None:
                    self.on_batch(self.peer, sent, self.queue.backlog(self.peer))
                continue
            rid = batch[res["index"]][0]
            if res["reason"] in ctb.DEPENDENCY:
                skip[rid] = res["reason"]
            else:
                self.queue.mark(self.peer, [(rid, "rejected", res["reason"])])
        self.deferred = skip
        return sent, receipts

    @staticmethod
    def _earlier_receipts(client, batch, verdicts):
        """A USE the peer already held may have been accounted by an upload
        whose answer never reached the queue (a bridge killed after the
        peer committed): ask the peer for its receipts, so none is lost.
        Peers without receipts() (older contract) are skipped."""
        ask = getattr(client, "receipts", None)
        if ask is None:
            return []
        uses = []
        for (rid, raw), v in zip(batch, verdicts):
            if v["code"] == ctb.DUPLICATE and raw[0] == R.USE:
                uses.append((R.parse(raw).fields[0], rid))
        return ask(uses) if uses else []
