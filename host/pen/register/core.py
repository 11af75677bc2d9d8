"""The register's logic, no HTTP: what a scanned QR is, the offline answer
(pen_protocol.check, the one the CLI uses), paying (the store client's
durable outbox, sent by one worker thread that owns the link), change
(seed payment example 2) and the day.

The web side never touches the link: it writes a payment to the outbox
(fsync'd) and the worker sends every open payment, so a payment survives a
cut link, a reload and a restart of `pen register`."""
import threading
import time

from pen import build as B
from pen.economy import qr
from pen.economy.catalogue import CatalogueError, check_paid_product
from pen.keys import SEALED_PAYLOAD, SealError, sealed_public_key, unseal_payload
from pen.store import BatchRejected
from pen.storeclient import ACCOUNTED, Outbox
from pen_protocol import check, ctb, ids, records as R


class Refused(ValueError):
    """A payment or change the register will not make: .key names the
    sentence in the language file, .detail is what the check said."""

    def __init__(self, key, detail=""):
        ValueError.__init__(self, key)
        self.key = key
        self.detail = detail


def read_scan(text):
    """A scanned or typed QR: ('use', raw) | ('token', ref, value) | ('sealed', payload)."""
    t = (text or "").strip()
    if t.startswith(qr.REC_PAYLOAD):
        try:
            raw = qr.parse_record_payload(t)
            rec = R.parse(raw)
        except (qr.QRError, R.RecordError):
            raise Refused("damaged-qr")
        if rec.type != R.USE:
            raise Refused("not-a-payment")
        return ("use", rec.raw)
    if t.startswith(qr.TOKEN_PAYLOAD):
        try:
            ref, value = qr.parse_token_payload(t)
        except qr.QRError:
            raise Refused("damaged-qr")
        return ("token", ref, value)
    if t.startswith(SEALED_PAYLOAD):
        try:
            sealed_public_key(t)
        except SealError:
            raise Refused("damaged-qr")
        return ("sealed", t)
    raise Refused("unknown-qr")


def refuses(a):
    """The till's policy on an offline answer: INVALID is refused, and so is
    a token the village node has heard spent. That word is hearsay (cannot
    know yet, check.py), but taking the token risks the shop's goods while
    refusing costs the customer only a wait until the copies meet."""
    return a.verdict == check.INVALID or a.reason == "spent-in-village"


class Register:
    """copy: the store's CTB copy (synchronised daily); outbox_path: the
    store client's outbox; product/account: what this till sells into;
    shop: the store council's Signer (gives change tokens), or None."""

    def __init__(self, copy, outbox_path, account, shop=None, exchange=None, clock=time.time, spent=None):
        """spent(ref) -> True/False/None: the village node's spent set (Worker.ask_spent)."""
        self.copy = copy
        self.spent = spent
        self.outbox = Outbox(outbox_path)
        self.account = account
        self.exchange = exchange  # the shop's exchange account: a token taken in for change goes there
        self.shop = shop
        self.clock = clock
        self.lock = threading.Lock()
        self.link = {"paired": False, "heard": None, "error": ""}

    # -- the offline answer ------------------------------------------------

    def answer(self, ref, chain=()):
        seen = self.spent(ref) if self.spent else None
        a = check.check_token(self.copy, ref, list(chain), spent={bytes(ref)} if seen else None)
        mine = [p for p in self.outbox.by_token(ref) if not chain or p.record != bytes(chain[-1])]
        if mine and a.verdict != check.INVALID:  # this till took it already (the copy is not synced yet)
            a = check.Answer(check.INVALID, "already-spent", "this register took this token today", ref)
        return a

    def check_scan(self, text):
        s = read_scan(text)
        if s[0] == "use":
            rec = R.parse(s[1])
            return s, self.answer(rec.fields[0], [rec.raw])
        if s[0] == "token":
            return s, self.answer(s[1])
        return s, None

    # -- paying --------------------------------------------------------------

    def pay_use(self, raw):
        """A USE the customer signed: the offline answer; refused when invalid,
        else in the outbox before this returns (the worker sends it)."""
        rec = R.parse(raw)
        ours = [ids.pack(a) for a in (self.account, self.exchange) if a]
        if rec.fields[2] not in ours:  # signed over to someone else's account
            raise Refused("wrong-account", ids.unpack(rec.fields[2]))
        self.known_product(ids.unpack(rec.fields[1]))
        with self.lock:
            a = self.answer(rec.fields[0], [rec.raw])
            if refuses(a):
                raise Refused(a.reason, a.detail)
            p = self.outbox.add(rec.id, rec.fields[0], rec.raw, self.clock())
            # "the token is then added to the local blockchain copy for later
            # synchronization" (seed, example 2): a token the copy does not
            # know is refused there, and stays known to the outbox
            try:
                self.copy.submit([rec.raw])
            except BatchRejected:
                pass
        return a, p

    def pay_book(self, sealed, ref, password, product, exchange=False):
        """A credit-book token: check first, then the password unseals the
        book's key here, signs the USE, and the seed is dropped."""
        try:
            ids.pack(product)
        except ids.ProductIdError:
            raise Refused("bad-product")
        self.known_product(self.exchange if exchange and self.exchange else product)
        pk = sealed_public_key(sealed)
        t = self.copy.get(b"T" + ref)
        if t is not None and ctb.user(t) != pk:
            raise Refused("not-this-book")
        a = self.answer(ref)
        if refuses(a):
            raise Refused(a.reason, a.detail)
        try:
            user = unseal_payload(sealed, password)
        except SealError:
            raise Refused("wrong-password")
        if exchange and not self.exchange:
            raise Refused("no-shop-key")
        if exchange:  # a token taken in for change buys the exchange itself (seed, example 2)
            product = self.exchange
        rec = B.use(user, ref, product, self.exchange if exchange else self.account)
        del user
        return self.pay_use(rec.raw)

    def known_product(self, pid):
        """A USE this till takes names a product of the economy's catalogue
        (in its CTB copy), as every paying front end checks; the validator
        does not (docs/economy.md, "Where product ids are checked")."""
        try:
            check_paid_product(self.copy, pid)
        except CatalogueError:
            raise Refused("unknown-product", pid)

    # -- change (seed, payment example 2) -------------------------------------

    def change_for(self, value, price):
        """The shop's change tokens (issued by it, not yet given) that make
        value - price, largest first; Refused when they cannot."""
        if self.shop is None:
            raise Refused("no-shop-key")
        if price < 0 or price > value:
            raise Refused("bad-price")
        owe = value - price
        mine = sorted(((ctb.token_value(t), k[1:]) for k, t in self.copy.state_prefix(b"T")
                       if ctb.token_issuer(t) == self.shop.kid and ctb.token_kind(t) == R.CHANGE
                       and ctb.token_state(t) == ctb.ISSUED), reverse=True)
        pick, left = [], owe
        for v, ref in mine:
            if v <= left:
                pick.append((ref, v))
                left -= v
        if left:
            raise Refused("no-change", str(left))
        return owe, pick

    def give_change(self, customer_pk, picks):
        """The shop names the customer user of each change token (SET_USER),
        into the copy that is synchronised later."""
        recs = [B.set_user(self.shop, ref, customer_pk) for ref, _ in picks]
        with self.lock:
            try:
                self.copy.submit([r.raw for r in recs])
            except BatchRejected as e:  # nothing was stored
                raise Refused("change-refused", e.verdict.reason)
        return recs

    # -- the day ---------------------------------------------------------------

    def day(self, since):
        rows, totals = [], {}
        for p in self.outbox.all():
            if p.created < since:
                continue
            rec = R.parse(p.record)
            t = self.copy.get(b"T" + p.token)
            value = ctb.token_value(t) if t else None
            uses = ctb.uses(t) if t else []
            state = "accounted" if p.state == ACCOUNTED else "pending"
            if len(uses) > 1 or (uses and ctb.use_id(ctb.effective_use(t)) != p.id):
                state = "conflict"
            product = ids.unpack(rec.fields[1])
            if value is not None and state != "conflict":
                totals[product] = totals.get(product, 0) + value
            rows.append({"id": p.id.hex(), "token": "%s:%d" % (p.token[:4].hex(), R.ref_serial(p.token)), "product": product, "value": value,
                         "state": state, "sent": p.state, "time": p.created})
        return {"payments": rows, "totals": totals,
                "outstanding": sum(1 for r in rows if r["state"] == "pending"),
                "queue": len(self.outbox.open_payments()), "link": dict(self.link)}
