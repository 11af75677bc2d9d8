"""The phone's side of pairing and sealed sessions (pen_protocol.linkauth),
over any transport with read(timeout_s) / write(data).

    paired = pair(port, code, phone_pk)          once, with the code the node shows
    client = open_session(port, paired)          every time the link comes up
    ask(port, L.SPENT, ref, client=client)       then as with a plain LinkClient

SecureClient has LinkClient's shape (request, feed), so everything that
speaks the link speaks it sealed by taking it as its client.
"""
import os
from pathlib import Path

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


class PairingFile:
    """A serving side's pairing state on a PC (the bridge's Meshtastic
    gateway): load() / save(bytes), replaced atomically, fsync'd, mode 600
    (it holds the pairing secrets)."""

    def __init__(self, path):
        self.path = str(path)

    def load(self):
        p = Path(self.path)
        return p.read_bytes() if p.exists() else None

    def save(self, data):
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


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
    """LinkClient's shape, every request sealed, sealed answers opened.

    Only what arrives sealed is an answer or an event: anything else on the
    line (an ERROR in the clear, a plain frame) is unauthenticated, so it
    comes out as a LinkError and can never pass for the answer to a sealed
    request. An unpaired refusal in the clear means the node lost our
    session (it rebooted): `lost` is set and reopen(port) opens a new one."""

    def __init__(self, paired, nonce_p, nonce_n, rand=os.urandom):
        self.paired = paired
        self.rand = rand
        self.plain = LinkClient()  # numbers inner requests
        self.lost = False
        self.refusals = []  # ERROR frames in the clear (auth, replay, unpaired) seen
        self._start(nonce_p, nonce_n)

    def _start(self, nonce_p, nonce_n):
        self.session = A.Session(self.paired.psk, nonce_p, nonce_n, b"phone")
        self.outer = L.Decoder()
        self.inner = L.Decoder()
        self.lost = False

    def request(self, kind, payload=b""):
        seq, inner = self.plain.request(kind, payload)
        return seq, L.encode(L.SEALED, 0, self.session.seal(inner))

    def feed(self, data):
        out = []
        for f in self.outer.feed(data):
            if not isinstance(f, L.Frame):
                out.append(f)
            elif f.kind == NODE_SEALED:
                inner = self.session.open(f.payload)
                if isinstance(inner, int):
                    out.append(L.LinkError(inner))  # forged or replayed by someone on the line
                    continue
                out.extend(self.inner.feed(inner))
            elif f.kind == L.ERROR and f.payload:
                self.refusals.append(f)
                if f.payload[0] == L.E_UNPAIRED:
                    self.lost = True
                out.append(L.LinkError(f.payload[0]))
            else:
                out.append(L.LinkError(L.E_AUTH))
        return out

    def reopen(self, port, timeout_s=10.0):
        nonce_p, nonce_n = _open(port, self.paired, self.rand, timeout_s)
        self._start(nonce_p, nonce_n)


def _open(port, paired, rand, timeout_s):
    nonce_p = rand(A.NONCE_LEN)
    f = refused(ask(port, L.OPEN, paired.kid + nonce_p, timeout_s))
    p = bytes(f.payload)
    if len(p) < A.OPEN_ANSWER_LEN or not A.equal(A.open_proof(paired.psk, paired.kid, nonce_p, p[:16]), p[16:32]):
        raise LinkRefused(L.E_AUTH, "the node does not hold our pairing")
    return nonce_p, p[:16]


def open_session(port, paired, rand=os.urandom, timeout_s=10.0):
    """OPEN: fresh session keys; checks the node holds the pairing secret."""
    nonce_p, nonce_n = _open(port, paired, rand, timeout_s)
    return SecureClient(paired, nonce_p, nonce_n, rand)
