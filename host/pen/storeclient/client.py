"""StoreClient: a store's phone or PC paying through its node over any link.

    sc = StoreClient(port, Outbox(path), ctb_keys=[pk], client=open_session(port, paired))
    p = sc.pay(use_record_bytes)        -> Payment (state accounted, or sent on timeout)
    sc.check(ref)                       -> Spent(spent, kind, overflowed)
    sc.receipts()                       -> [Payment], every state
    sc.resume()                         -> [Payment] after a crash: sends what is not accounted

A receipt counts only when it is an ACCOUNTED record for the payment's
token and USE id, signed by one of the pinned CTB node keys (ctb_keys):
the node relays receipts, it cannot vouch for them. A receipt digest
(pen_protocol.digest: many accounted payments under one signature, sent
under load) counts the same way, for each payment of ours it names by token
and USE id prefix, and only once: a digest taken before ("replayed") or
signed more than REPLAY_WINDOW_S before the newest taken from its key
("stale") changes nothing.
"""
import time

from pen_protocol import cbor
from pen_protocol import digest as G
from pen_protocol import ids
from pen_protocol import link as L
from pen_protocol import records as R
from pen_protocol import sign

from pen.bridge.serial import LinkClient
from pen.transport.secure import LinkRefused

from .outbox import SIGNED, SENT, ACCOUNTED

# a digest signed this long before the newest one taken from its key is
# refused: digests are flooded and may arrive out of order (several
# bridges, relays' contention), but never a day late; the window also
# bounds the outbox's table of digests taken
REPLAY_WINDOW_S = 86400
RESEND_S = 2.0  # no answer to SUBMIT within this: send it again (idempotent at the node)
READ_S = 0.05


class Spent:
    __slots__ = ("spent", "kind", "overflowed")
    KINDS = ("unknown", "used", "accounted")

    def __init__(self, spent, kind, overflowed):
        self.spent = bool(spent)
        self.kind = kind
        self.overflowed = bool(overflowed)

    def __repr__(self):
        return "Spent(%s%s)" % (self.KINDS[self.kind] if 0 <= self.kind < 3 else self.kind,
                                ", set overflowed" if self.overflowed else "")


class NoAnswer(Exception):
    pass


def receipt_problem(raw, use, ctb_keys):
    """None when raw is a valid receipt for the USE record `use`, else why not."""
    try:
        r = R.parse(raw)
    except R.RecordError as e:
        return "malformed: %s" % e.reason
    if r.type != R.ACCOUNTED:
        return "not an accounted record"
    if r.fields[0] != use.fields[0] or r.fields[1] != use.id:
        return "for another payment"
    for pk in ctb_keys:
        if sign.kid(pk) == r.fields[2]:
            return None if sign.verify(pk, r.signed_message(), r.sig) else "bad signature"
    return "signed by a key not pinned as a CTB node"


class StoreClient:
    def __init__(self, port, outbox, ctb_keys, client=None, clock=time.monotonic, wall=time.time,
                 resend_s=RESEND_S, on_state=None, products=None):
        """products(pid) raises ValueError for a product the store must not
        take (pen.economy.catalogue.check_paid_product over its CTB copy:
        the catalogue check every paying front end makes); None: no copy."""
        self.products = products
        self.port = port
        self.outbox = outbox
        self.ctb_keys = [bytes(k) for k in ctb_keys]
        self.client = client or LinkClient()
        self.clock = clock
        self.wall = wall
        self.resend_s = resend_s
        self.rejected = []  # (receipt bytes, why) for receipts that did not verify
        self.on_state = on_state or (lambda payment: None)  # each state a payment reaches (progress)

    # -- the API --------------------------------------------------------------

    def pay(self, record, wait_s=30.0):
        """Relay a signed USE through the node and wait for its receipt.
        The payment is in the outbox (fsync'd) before a byte goes out."""
        use = self._use(record)
        if self.products is not None:
            self.products(ids.unpack(use.fields[1]))
        self.outbox.add(use.id, use.fields[0], use.raw, self.wall())
        return self._send(use, wait_s)

    def resume(self, wait_s=30.0):
        """Send again every payment not yet accounted (after a crash or a
        lost link); returns them with their new state."""
        return [self._send(R.parse(p.record), wait_s) for p in self.outbox.open_payments()]

    def check(self, ref, timeout_s=5.0):
        f = self._ask(L.SPENT, bytes(ref), timeout_s)
        spent, kind, over = cbor.loads(f.payload)
        return Spent(spent, kind, over)

    def receipts(self):
        return self.outbox.all()

    def listen(self, seconds):
        """Take in receipts that arrive (events) for the given time."""
        end = self.clock() + seconds
        while self.clock() < end:
            self._pump(lambda f: False)

    # -- inside ---------------------------------------------------------------

    @staticmethod
    def _use(record):
        try:
            use = R.parse(record)
        except R.RecordError as e:
            raise ValueError("not a record: %s" % e)
        if use.type != R.USE:
            raise ValueError("a store pays with a USE record, not %s" % use.name)
        return use

    def _send(self, use, wait_s):
        p = self.outbox.get(use.id)
        if p.state == SIGNED:
            f = self._ask(L.SUBMIT, use.raw, wait_s)
            if bytes(f.payload) != use.id:
                raise LinkRefused(L.E_BAD_PAYLOAD, "the node named another record id")
            p = self.outbox.mark(use.id, SENT, self.wall())
            self.on_state(p)
        end = self.clock() + wait_s
        while p.state != ACCOUNTED and self.clock() < end:
            self._pump(lambda f: False)
            p = self.outbox.get(use.id)
        return p

    def _ask(self, kind, payload, timeout_s):
        """One request, sent again with a new seq every resend_s until its
        answer; events that arrive meanwhile are taken in."""
        end = self.clock() + timeout_s
        while self.clock() < end:
            if getattr(self.client, "lost", False):  # the node rebooted: a new session
                self.client.reopen(self.port)
            seq, data = self.client.request(kind, payload)
            self.port.write(data)
            again = min(end, self.clock() + self.resend_s)
            while self.clock() < again:
                f = self._pump(lambda f: f.seq == seq and f.kind in (L.ERROR, kind | L.RESPONSE))
                if f is not None:
                    if f.kind == L.ERROR:
                        raise LinkRefused(f.payload[0] if f.payload else 0,
                                          bytes(f.payload[1:]).decode("utf-8", "replace"))
                    return f
        raise NoAnswer("no answer from the node on %s" % getattr(self.port, "name", "the link"))

    def _pump(self, wanted):
        """Read once; handle events; return the first frame `wanted` accepts."""
        got = None
        for f in self.client.feed(self.port.read(READ_S)):
            if not isinstance(f, L.Frame):
                continue
            if f.kind == L.EV_RECEIPT:
                self.receipt(bytes(f.payload))
            elif got is None and f.kind < 0x80 and wanted(f):
                got = f
        return got

    def receipt(self, raw):
        """Take a receipt or a digest as the node relayed it: None when it
        accounted a payment of ours, else why not (also kept in rejected).
        Nothing changes unless it verifies."""
        if raw[:1] == bytes((G.T_DIGEST,)):
            return self._digest(raw)
        return self._receipt(raw)

    def _digest(self, raw):
        d, why = G.verify(raw, self.ctb_keys)
        if why is None:
            why = self.outbox.digest_problem(d, REPLAY_WINDOW_S)
        if why is not None:
            self.rejected.append((raw, why))
            return why
        done = []
        for ref, prefix in d.entries:
            for p in self.outbox.by_token(ref):
                if p.id[:G.USE_PREFIX] == prefix and p.state != ACCOUNTED:
                    done.append(self.outbox.mark(p.id, ACCOUNTED, self.wall(), d.raw))
        self.outbox.digest_taken(d, REPLAY_WINDOW_S)
        for p in done:
            self.on_state(p)
        if not done:
            self.rejected.append((raw, "no payment of ours"))
            return "no payment of ours"
        return None

    def _receipt(self, raw):
        try:
            ref = R.parse(raw).fields[0]
        except (R.RecordError, IndexError):
            self.rejected.append((raw, "malformed"))
            return "malformed"
        why = "no payment of ours"
        for p in self.outbox.by_token(ref):
            why = receipt_problem(raw, R.parse(p.record), self.ctb_keys)
            if why is None:
                self.on_state(self.outbox.mark(p.id, ACCOUNTED, self.wall(), raw))
                return None
        self.rejected.append((raw, why))
        return why
