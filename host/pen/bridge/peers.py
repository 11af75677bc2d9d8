"""Peers a bridge uploads to. Each has submit(raws) -> dict:
{"ok": True, "verdicts": [{"code", "reason"}...], "receipts": [raw...]} or
{"ok": False, "index": i, "reason": code, "detail": text}; raises
PeerUnavailable when it cannot be reached."""
import time

from pen.accounting import receipts_for
from pen.bridge.uploader import PeerUnavailable
from pen.store import BatchRejected


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
            return {"ok": False, "index": e.index, "reason": e.verdict.reason, "detail": e.verdict.detail}
        receipts = receipts_for(self.store, verdicts, self.node_key, self.clock())
        return {"ok": True, "verdicts": [{"code": v.code, "reason": v.reason} for v in verdicts],
                "receipts": receipts}
