"""Receipt digests at the bridge PC: many ACCOUNTED receipts for one village
in one signed T_DIGEST frame (pen_protocol/digest.py, docs/mesh.md).

The digest is signed by the CTB node's key (role node), the key that signed
the receipts: a bridge PC that is also the CTB node (pen.bridge.peers.
LocalPeer, the simulator's bridge PC) holds it. DigestSigner names only
receipts that key itself signed and that verify, so a digest never vouches
for more than the receipts it replaces; any other receipt goes down alone.
"""
import time

from pen_protocol import digest as G
from pen_protocol import records as R
from pen_protocol import sign


class DigestSigner:
    """sign(receipts) -> (digest bytes, [index of each receipt it names])
    or None when fewer than one of them is the key's own valid receipt.
    key: a pen.keys.Signer (callable on a message, .kid, .public_key);
    clock: seconds (the digest's time field, which stores keep their replay
    window by)."""

    def __init__(self, key, clock=time.time):
        self.key = key
        self.clock = clock
        self.kid = bytes(key.kid)
        self._seen = {}  # receipt bytes -> own()'s answer: the PC offers the same ones again and again

    def own(self, raw):
        """(token ref, USE id) of raw when it is an ACCOUNTED receipt this key
        signed and it verifies, else None."""
        raw = bytes(raw)
        if raw not in self._seen:
            if len(self._seen) >= 4096:  # bounded: a busy day's receipts, then start again
                self._seen.clear()
            self._seen[raw] = self._own(raw)
        return self._seen[raw]

    def _own(self, raw):
        try:
            r = R.parse(raw)
        except R.RecordError:
            return None
        if r.type != R.ACCOUNTED or r.fields[2] != self.kid:
            return None
        if not sign.verify(self.key.public_key, r.signed_message(), r.sig):
            return None
        return r.fields[0], r.fields[1]

    def sign(self, receipts):
        entries = []
        used = []
        for i, raw in enumerate(receipts):
            e = self.own(raw)
            if e is None:
                continue
            used.append(i)
            if e not in entries:  # the same receipt twice: one entry names both
                entries.append(e)
            if len(entries) == G.MAX_ENTRIES:
                break
        if not entries:
            return None
        body = G.body(self.kid, int(self.clock()) & 0xFFFFFFFF, entries)
        return body + self.key(G.DOMAIN + body[1:]), used
