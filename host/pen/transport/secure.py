"""The phone's side of pairing and sealed sessions (pen_protocol.linkauth),
over any transport with read(timeout_s) / write(data).

    paired = pair(port, code, phone_pk)          once, with the code the node shows
    client = open_session(port, paired)          every time the link comes up
    ask(port, L.SPENT, ref, client=client)       then as with a plain LinkClient

SecureClient has LinkClient's shape (request, feed), so everything that
speaks the link speaks it sealed by taking it as its client.
"""
import os

from pen_protocol import link as L
from pen_protocol import linkauth as A
from pen_protocol import sign

from pen.bridge.serial import LinkClient, ask

NODE_SEALED = L.SEALED | L.RESPONSE


class LinkRefused(Exception):
    """The node answered ERROR: .reason is the link's reason code."""

    def __init__(self, reason, text=""):
        super().__init__("the node refused: %s%s" % (L.REASONS.get(reason, reason), (" (%s)" % text) if text else ""))
        self.reason = reason
        self.text = text


def refused(frame):
    if frame.kind == L.ERROR:
        raise LinkRefused(frame.payload[0] if frame.payload else 0, bytes(frame.payload[1:]).decode("utf-8", "replace"))
    return frame


class Paired:
    """What a phone keeps after pairing: its key's id and the shared secret."""

    def __init__(self, kid, psk):
        self.kid = bytes(kid)
        self.psk = bytes(psk)

    def to_json(self):
        return {"kid": self.kid.hex(), "psk": self.psk.hex()}

    @classmethod
    def from_json(cls, d):
        return cls(bytes.fromhex(d["kid"]), bytes.fromhex(d["psk"]))


def pair(port, code, phone_pk, rand=os.urandom, timeout_s=10.0):
    """Run the pairing with the code the node shows; raises LinkRefused
    (E_LOCKED: no code open or attempts used up; E_PAIR: wrong code)."""
    run = A.Pairing(code, phone_pk, rand)
    f = refused(ask(port, L.PAIR_START, run.start(), timeout_s))
    fin = run.finish(f.payload)
    if fin is None:
        # the node's confirmation does not match: a wrong code. The node
        # learns it when our (wrong) confirmation fails, and counts it
        ask(port, L.PAIR_FINISH, sign.kid(phone_pk) + bytes(A.TAG_LEN), timeout_s)
        raise LinkRefused(L.E_PAIR, "wrong code")
    refused(ask(port, L.PAIR_FINISH, fin, timeout_s))
    return Paired(sign.kid(phone_pk), run.psk)


class SecureClient:
    """LinkClient's shape, every request sealed, sealed answers opened."""

    def __init__(self, paired, nonce_p, nonce_n):
        self.session = A.Session(paired.psk, nonce_p, nonce_n, b"phone")
        self.plain = LinkClient()  # numbers inner requests
        self.outer = L.Decoder()
        self.inner = L.Decoder()
        self.refusals = []  # outer ERROR frames (auth, replay, unpaired) seen

    def request(self, kind, payload=b""):
        seq, inner = self.plain.request(kind, payload)
        return seq, L.encode(L.SEALED, 0, self.session.seal(inner))

    def feed(self, data):
        out = []
        for f in self.outer.feed(data):
            if isinstance(f, L.Frame) and f.kind == NODE_SEALED:
                inner = self.session.open(f.payload)
                if isinstance(inner, int):
                    out.append(L.LinkError(inner))  # forged or replayed by someone on the line
                    continue
                out.extend(self.inner.feed(inner))
            else:
                if isinstance(f, L.Frame) and f.kind == L.ERROR:
                    self.refusals.append(f)
                out.append(f)
        return out


def open_session(port, paired, rand=os.urandom, timeout_s=10.0):
    """OPEN: fresh session keys; checks the node holds the pairing secret."""
    nonce_p = rand(A.NONCE_LEN)
    f = refused(ask(port, L.OPEN, paired.kid + nonce_p, timeout_s))
    p = bytes(f.payload)
    if len(p) < A.OPEN_ANSWER_LEN or not A.equal(A.open_proof(paired.psk, paired.kid, nonce_p, p[:16]), p[16:32]):
        raise LinkRefused(L.E_AUTH, "the node does not hold our pairing")
    client = SecureClient(paired, nonce_p, p[:16])
    return client
