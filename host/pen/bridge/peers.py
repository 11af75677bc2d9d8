"""Peers a bridge uploads to. Each has submit(raws) -> dict:
{"ok": True, "verdicts": [{"code", "reason"}...], "receipts": [raw...]} or
{"ok": False, "index": i, "reason": code, "detail": text}; raises
PeerUnavailable when it cannot be reached. receipts([(token_ref, use_id)])
-> [raw ACCOUNTED...] returns receipts the peer already holds (for uploads
whose answer the bridge lost)."""
import time

from pen.accounting import make_receipts
from pen.peering import MAX_RECEIPT_ASKS, PeerUnavailable, receipts_in, refusal  # noqa: F401
from pen.store import BatchRejected
from pen_protocol import records as R


class LocalPeer:
    """A CTB on this machine (a bridge PC that is also the CTB node, and tests)."""

    def __init__(self, store, node_key=None, clock=time.time):
        self.store = store
        self.node_key = node_key
        self.clock = clock
        self.online = True  # tests cut the internet by setting False

    def submit(self, raws):
        if not self.online:
            raise PeerUnavailable("offline")
        now = self.clock()
        try:
            # the receipts in the batch's own transaction, as a CTB node stores them: a crash between the
            # two never leaves accepted USEs whose receipts were never made
            verdicts, made = self.store.submit_follow(
                raws, lambda state, vs: make_receipts(state, vs, self.node_key, now), self.node_key)
        except BatchRejected as e:
            return refusal(e)
        return {"ok": True, "verdicts": [{"code": v.code, "reason": v.reason} for v in verdicts],
                "receipts": [r.raw for r in made]}

    def receipts(self, uses):
        if not self.online:
            raise PeerUnavailable("offline")
        out = []
        for ref, use_id in uses:
            out += receipts_in(self.store.token_history(ref), use_id)
        return out


class HttpPeer:
    """A CTB node over HTTP (pen.node.client.NodeClient); signer is the
    bridge's key, allowed on the node with role bridge (docs/node.md)."""

    def __init__(self, url, timeout_s=30.0, signer=None, clock=time.time):
        from pen.node.client import NodeClient
        self.url = url
        self.client = NodeClient(url, timeout_s, signer=signer, clock=clock)

    def submit(self, raws):
        return self.client.submit(raws)

    def receipts(self, uses):
        out = []
        for i in range(0, len(uses), MAX_RECEIPT_ASKS):
            out += self.client.receipts(uses[i:i + MAX_RECEIPT_ASKS])
        return out
