"""A small economy for the register's tests: a federation, Formosa (pays
Carlos), the Village Store with an exchange allowance and change tokens
(seed, payment example 2), Carlos's credit book (a sealed key) and a
customer with his own device (signs USEs himself)."""
from pen import build as B
from pen.keys import Signer, seal_seed
from pen.store import SQLiteCTB
from pen_protocol import ctb, records as R

T0 = 1795000000
FOOD = "501000000001"
EXCHANGE = "841215000001"
WORK = "80111600"
PASSWORD = "mango 7 river"

FED, FORMOSA, SHOP = (Signer.from_phrase("register/" + n) for n in ("federation", "formosa", "village-store"))
CARLOS = Signer.from_phrase("register/carlos")  # his key lives only sealed in the book
ANA = Signer.from_phrase("register/ana")  # pays from her own phone: a pen:rec: USE


def sealed_book():
    from nacl.pwhash import argon2id
    return seal_seed(CARLOS.seed, PASSWORD, argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)


def _passed(owner, serial, subject, about, electorate):
    op = B.votation_open(owner, serial, subject, about, electorate, T0 + 86400)
    votes = [B.vote(s, op.fields[0], "yes") for s in electorate]
    return [op] + votes + [B.votation_close(owner, op, votes, T0 + 86400)]


def build(path):
    """The store's CTB copy at path -> {name: token ref} (values in VALUES)."""
    copy = SQLiteCTB(path, clock=lambda: T0 + 2 * 86400)
    coun = [FED, FORMOSA, SHOP]
    recs = [B.council(FED, "Valley", "federation")] + [
        B.council(s, n, "production", FED) for s, n in ((FORMOSA, "Formosa Plumbing"), (SHOP, "Village Store"))]
    recs += [B.genesis(coun, "Valley economy", T0)]
    recs += [B.member(FORMOSA, CARLOS, "member"), B.member(FORMOSA, ANA, "member")]
    prop = B.proposal(FORMOSA, 1, 2026, [(WORK, 1, 60000)])
    recs += [prop] + _passed(FORMOSA, 1, "approve", prop.fields[0], coun)
    allow = _passed(SHOP, 1, "exchange", B.exchange_about(SHOP, 20000, EXCHANGE), coun)
    recs += allow
    toks = {}
    for n, (name, user, value) in enumerate((("book1", CARLOS, 10000), ("book2", CARLOS, 1000),
                                             ("ana1", ANA, 2000), ("ana2", ANA, 3000), ("ana3", ANA, 500), ("ana4", ANA, 700))):
        t = B.issue(FORMOSA, n + 1, value, prop.fields[0])
        recs += [t, B.set_user(FORMOSA, t.fields[0], user)]
        toks[name] = t.fields[0]
    for n, value in enumerate((5000, 2000, 2000, 1000)):
        t = B.issue(SHOP, 10 + n, value, allow[0].fields[0], change=True)
        recs.append(t)
        toks["change%d" % n] = t.fields[0]
    vs = copy.submit([r.raw for r in recs])
    bad = [(R.parse(r.raw).name, v.reason) for r, v in zip(recs, vs) if v.code != ctb.ACCEPTED]
    assert not bad, bad
    return copy, toks
