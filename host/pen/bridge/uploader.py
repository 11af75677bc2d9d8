"""Uploading the village's records to one CTB peer in idempotent, resumable
batches. Sans-IO: `step()` takes a peer object with `submit(raws)` and does
one round; the caller decides when (and the asyncio driver does it in a
thread, since the peer client is blocking HTTP).

Resumable: what a peer has is recorded only after the peer answered, in one
transaction; a bridge killed before that re-sends the batch, and the CTB
takes re-sent records as duplicates. Idempotent end to end.

A batch the peer refuses names every refused record and its reason
(pen.peering.refused_records); nothing of it was stored. A reason that only
means "the peer lacks a dependency" (pen_protocol.ctb.DEPENDENCY) holds the
record for that peer with exponential back-off, and quarantines it after
bounded tries (pen.bridge.queue.hold: durable, shown by `pen bridge
status`); any other reason is final and kept for the operator. The rest of
the batch goes again at once, without them. Held records are tried again
only when their back-off is over, and only in batches of held records: an
honest record never waits behind one nor is sent with one. So junk costs
the peer a bounded number of validations: each fresh record is validated
at most twice, a held one once per try (tests/bridge/test_uploader.py counts
them; before, 500 junk records cost 245k validations at once and 125k every
later round).
"""
from pen.peering import PeerUnavailable, refused_records  # noqa: F401  (PeerUnavailable re-exported)
from pen_protocol import ctb, records as R

MAX_BATCH = 500  # records per request: ~50 KB, well under the node's request bound


class Uploader:
    """clock: the time back-off is reckoned in (default: the queue's)."""

    def __init__(self, queue, peer_name, batch=MAX_BATCH, on_batch=None, clock=None):
        self.queue = queue
        self.peer = peer_name
        self.batch = batch
        self.on_batch = on_batch  # on_batch(peer, sent so far this round, backlog left): progress display
        self.clock = clock or queue.clock
        self.quarantined = []  # ids quarantined by the last round

    def step(self, client):
        """Upload until the peer has everything it can take now: fresh
        records first, then held ones whose back-off is over. Returns
        (sent, receipts): records the peer took, and the ACCOUNTED receipts
        it returned (raw bytes). Raises PeerUnavailable when the peer cannot
        be reached; what was confirmed before that stays confirmed."""
        now = self.clock()
        self.quarantined = []
        done = [0, []]
        for source in (lambda: self.queue.pending(self.peer, self.batch),
                       lambda: self.queue.due(self.peer, now, self.batch)):
            while True:
                batch = source()
                if not batch:
                    break
                self._send(client, batch, now, done)
        return done[0], done[1]

    def _send(self, client, batch, now, done):
        """One batch until the peer took what is left of it: each refusal
        sets every refused record aside (held or rejected) and sends the
        rest again."""
        while batch:
            res = client.submit([raw for _, raw in batch])
            if res["ok"]:
                outs = [(rid, v["code"], v.get("reason", "")) for (rid, _), v in zip(batch, res["verdicts"])]
                got = list(res.get("receipts", [])) + self._earlier_receipts(client, batch, res["verdicts"])
                self.queue.mark(self.peer, outs, got)
                done[0] += len(batch)
                done[1] += got
                if self.on_batch is not None:
                    self.on_batch(self.peer, done[0], self.queue.backlog(self.peer))
                return
            refused = refused_records(res)
            wait = [(batch[i][0], r) for i, r in refused if r in ctb.DEPENDENCY]
            final = [(batch[i][0], "rejected", r) for i, r in refused if r not in ctb.DEPENDENCY]
            if wait:
                self.quarantined += self.queue.hold(self.peer, wait, now)
            if final:
                self.queue.mark(self.peer, final)
            out = {i for i, _ in refused}
            batch = [x for i, x in enumerate(batch) if i not in out]

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
