"""The node's side of pairing and sealed link sessions (pen_protocol.linkauth).

    auth = LinkAuth(storage, rand)       storage: load() -> bytes|None, save(bytes)
    code = auth.new_code()               show it on the console; MAX_ATTEMPTS tries
    LinkService(node, auth=auth)         the service then serves HELLO, PAIR_*,
                                         OPEN and SEALED only; everything else
                                         gets ERROR unpaired

What persists (storage, CBOR [code or None, attempts left, [[kid, pk, psk]...]]):
the open code, how many attempts it has left, the paired phones. An attempt
is counted and saved before the node answers PAIR_START, so pulling the
power does not give an attacker his attempts back; a run that fails or is
abandoned is still spent. After MAX_ATTEMPTS the code is dead until the
operator shows a new one. Pairing consumes the code (one phone per code).

Attempts are also spaced: after the n-th the next waits 2**n s (ERROR locked,
"too soon"). What an attacker can do: with 5 attempts per code shown and a 6-digit code,
guess it with probability 5 / 10**6 per code the operator shows; listening
to a pairing gives nothing to test offline (CPace). He can always jam the
link or reset a session (OPEN) — denial of service, never a forged frame.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from pen_protocol import cbor
from pen_protocol import link as L
from pen_protocol import linkauth as A
from pen_protocol import sign

MAX_ATTEMPTS = const(5)  # pen_protocol.linkauth.state_bytes(code, 5, []) is a provisioned node's file
# after the n-th attempt on a code the next waits 2**n s (2, 4, 8, 16): a
# person who mistyped barely notices, a script gets its 5 tries in 30 s at
# best. In RAM (a reboot resets the wait, never the count)
_GAP_MS = const(1000)
MAX_PHONES = const(8)  # pairings kept; the oldest goes first
# events buffered while no session is open (a receipt arriving while the
# phone is away waits for it); beyond this the oldest go
_HELD_BYTES = const(2048)
_NODE_SEALED = const(0x4B)  # L.SEALED | L.RESPONSE


class FileStore:
    """Pairing state in one small file, replaced atomically (write, rename)."""

    def __init__(self, path):
        self.path = path

    def load(self):
        try:
            with open(self.path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def save(self, data):
        import os
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, self.path)


class MemStore:
    def __init__(self, data=None):
        self.data = data

    def load(self):
        return self.data

    def save(self, data):
        self.data = bytes(data)


class LinkAuth:
    def __init__(self, storage, rand):
        self.storage = storage
        self.rand = rand  # rand(n) -> n random bytes (os.urandom on a board)
        self.code = None
        self.attempts = 0
        self.phones = []  # [kid, pk, psk]
        self.run = None  # the pairing run in progress
        self.session = None
        self.held = []
        self.dec = L.Decoder()  # frames inside sealed ones
        self.damaged = False
        self.next_try_ms = None  # no PAIR_START before this (None: any time)
        raw = storage.load()
        if raw:
            try:
                self.code, self.attempts, self.phones = cbor.loads(raw)
            except (ValueError, TypeError):
                # a damaged file (power cut mid-write on a filesystem that
                # does not rename atomically): no pairing is trusted and no
                # code is open; the operator shows a new one, phones re-pair
                self.code, self.attempts, self.phones = None, 0, []
                self.damaged = True

    def _save(self):
        self.storage.save(A.state_bytes(self.code, self.attempts, self.phones))

    def new_code(self):
        """A fresh code with MAX_ATTEMPTS attempts (the console shows it)."""
        self.code = A.new_code(self.rand)
        self.attempts = MAX_ATTEMPTS
        self.next_try_ms = None
        self._save()
        return self.code

    def paired(self):
        return [p[0] for p in self.phones]

    # -- serving ------------------------------------------------------------

    def serve(self, f, now_ms, request):
        """One frame from the link. request(frame, now_ms) -> answer bytes is
        the service's own dispatch. Returns the bytes to write."""
        k = f.kind
        if k == L.HELLO:
            return request(f, now_ms)
        if k == L.PAIR_START:
            return self._start(f, now_ms)
        if k == L.PAIR_FINISH:
            return self._finish(f)
        if k == L.OPEN:
            return self._open(f)
        if k == L.SEALED:
            return self._sealed(f, now_ms, request)
        return L.error(f.seq, L.E_UNPAIRED, "pair, then open a session")

    def _start(self, f, now_ms):
        p = bytes(f.payload)
        if len(p) != A.START_LEN:
            return L.error(f.seq, L.E_BAD_PAYLOAD, "pair start is 80 bytes")
        if self.code is None or self.attempts <= 0:
            return L.error(f.seq, L.E_LOCKED, "no pairing code open: show one on the node")
        if self.next_try_ms is not None and now_ms - self.next_try_ms < 0:
            return L.error(f.seq, L.E_LOCKED, "too soon: try again in %d s" % ((self.next_try_ms - now_ms + 999) // 1000))
        self.attempts -= 1
        self._save()  # before answering: a reboot gives no attempt back
        self.next_try_ms = now_ms + (_GAP_MS << (MAX_ATTEMPTS - self.attempts))
        run = A.Pairing(self.code, p[:32], self.rand)
        ans = run.answer(p)
        if ans is None:
            self.run = None
            return L.error(f.seq, L.E_PAIR, "bad share")
        self.run = run
        return L.encode(L.PAIR_START | L.RESPONSE, f.seq, ans)

    def _finish(self, f):
        run = self.run
        self.run = None  # one confirmation per run, right or wrong
        if run is None or not run.confirm(f.payload):
            return L.error(f.seq, L.E_PAIR, "pairing failed: wrong code?")
        kid = sign.kid(run.phone_pk)
        self.phones = [p for p in self.phones if p[0] != kid][-(MAX_PHONES - 1):]
        self.phones.append([kid, run.phone_pk, run.psk])
        self.code = None  # one pairing per code shown
        self.attempts = 0
        self._save()
        return L.encode(L.PAIR_FINISH | L.RESPONSE, f.seq, b"")

    def _open(self, f):
        p = bytes(f.payload)
        if len(p) != A.OPEN_LEN:
            return L.error(f.seq, L.E_BAD_PAYLOAD, "open is 20 bytes")
        for kid, pk, psk in self.phones:
            if kid == p[:4]:
                nonce_n = self.rand(A.NONCE_LEN)
                self.session = A.Session(psk, p[4:], nonce_n, b"node")
                self.dec = L.Decoder()
                out = L.encode(L.OPEN | L.RESPONSE, f.seq, nonce_n + A.open_proof(psk, kid, p[4:], nonce_n))
                held = b"".join(self.held)
                self.held = []
                return out + self.seal(held)
        return L.error(f.seq, L.E_UNPAIRED, "this phone is not paired here")

    def _sealed(self, f, now_ms, request):
        if self.session is None:
            return L.error(f.seq, L.E_UNPAIRED, "no session open")
        inner = self.session.open(f.payload)
        if inner == A.AUTH:
            return L.error(f.seq, L.E_AUTH, "sealed frame does not verify")
        if inner == A.REPLAY:
            return L.error(f.seq, L.E_REPLAY, "sealed frame seen before")
        out = []
        for item in self.dec.feed(inner):
            if isinstance(item, L.LinkError):
                out.append(L.error(0, item.reason, L.REASONS.get(item.reason, "")))
            elif item.kind in (L.PAIR_START, L.PAIR_FINISH, L.OPEN, L.SEALED):
                out.append(L.error(item.seq, L.E_UNKNOWN_KIND, "not inside a sealed frame"))
            else:
                out.append(request(item, now_ms))
        return self.seal(b"".join(out))

    def seal(self, data):
        """Bytes for the phone -> sealed frames (several when long). With no
        session open, events wait (at most _HELD_BYTES)."""
        if not data:
            return b""
        if self.session is None:
            self.held.append(bytes(data))
            while sum(len(h) for h in self.held) > _HELD_BYTES and len(self.held) > 1:
                del self.held[0]
            return b""
        out = []
        for chunk in _chunks(data, A.MAX_INNER):
            out.append(L.encode(_NODE_SEALED, 0, self.session.seal(chunk)))
        return b"".join(out)


def _chunks(data, n):
    """Cut a run of encoded frames at frame ends into pieces of at most n
    bytes (a frame longer than n is cut anyway: the decoder rejoins it)."""
    out = []
    start = 0
    while start < len(data):
        end = min(start + n, len(data))
        if end < len(data):
            z = data.rfind(b"\x00", start, end)
            if z >= start:
                end = z + 1
        out.append(data[start:end])
        start = end
    return out
