"""Peers a bridge uploads to. Each has submit(raws) -> dict:
{"ok": True, "verdicts": [{"code", "reason"}...], "receipts": [raw...]} or
{"ok": False, "index": i, "reason": code, "detail": text}; raises
PeerUnavailable when it cannot be reached. receipts([(token_ref, use_id)])
-> [raw ACCOUNTED...] returns receipts the peer already holds (for uploads
whose answer the bridge lost)."""
import time

from pen.accounting import receipts_for
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
        try:
            verdicts = self.store.submit(raws)
        except BatchRejected as e:
            return refusal(e)
        receipts = receipts_for(self.store, verdicts, self.node_key, self.clock())
        return {"ok": True, "verdicts": [{"code": v.code, "reason": v.reason} for v in verdicts],
                "receipts": receipts}

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
