"""Year end is complete and order-free: every excess token of a closed year
is accounted (the validator refuses a year end that leaves one out), a year
end that arrives before the records it depends on is held and then taken,
and every arrival order ends in one state. Also the bounds on sums of token
values (issue 12, items 1 and 2)."""
import random

import pytest

from pen import build as B
from pen_protocol import cbor, ctb, ids, records as R, yearend

from .kit import Fed, accept, mid_year, rejected

U64 = 2 ** 64 - 1


@pytest.fixture
def fed():
    return Fed()


def _ye(council, serial, year, tokens, unissued, part=False):
    content = {1: sorted(t.fields[0] for t in tokens), 2: unissued}
    if part:
        content[3] = 1
    return B.publication(council, serial, "year-end", year, content)


def _state(f):
    return [(k, cbor.dumps(v)) for k, v in sorted(f.st.kv.items())], sorted(f.st.recs)


def _nothing_stranded(f, council, year):
    """Every normal token of the council's year is accounted, used, or
    usable by someone other than the council: none is left neither
    spendable nor accounted."""
    ckey = ctb.council_key(f.st, council.kid)
    seen = 0
    for k, t in f.st.kv.items():
        if k[:1] != b"T" or ctb.token_issuer(t) != council.kid or ctb.token_kind(t) != R.NORMAL:
            continue
        if ctb.proposal_year(f.st.get(b"P" + ctb.token_authority(t))) != year:
            continue
        seen += 1
        state = ctb.token_state(t)
        assert state in (ctb.USED, ctb.ACCOUNTED) or (state == ctb.USABLE and ctb.user(t) != ckey), (k, t)
    return seen


# -- completeness ----------------------------------------------------------

def _prod_plan(fed):
    """prod's approved 2026 plan of 1000 credits."""
    return fed.k, fed.k["prod"], fed.plan(fed.k["prod"], 2026, [("40", 1, 1000)])


def test_year_end_leaving_out_an_issued_token_is_refused(fed):
    _, prod, prop = _prod_plan(fed)
    a = fed.token(prod, prop, 300)
    b = fed.token(prod, prop, 200)
    v = rejected(fed.led, fed.st, _ye(prod, 90, 2026, [a], 500), "excess-unlisted")
    assert v.detail == "%s's excess tokens of 2026 hold 500 credits; this year end lists 300" % prod.kid.hex()
    accept(fed.led, _ye(prod, 91, 2026, [a, b], 500))
    assert _nothing_stranded(fed, prod, 2026) == 2


def test_year_end_leaving_out_the_councils_own_usable_token_is_refused(fed):
    _, prod, prop = _prod_plan(fed)
    own = fed.token(prod, prop, 250, prod)
    rejected(fed.led, fed.st, _ye(prod, 90, 2026, [], 750), "excess-unlisted")
    # once the council spends it, it is no longer excess and the empty list is complete
    accept(fed.led, B.use(prod, own.fields[0], "40", "40"))
    accept(fed.led, _ye(prod, 91, 2026, [], 750))
    assert _nothing_stranded(fed, prod, 2026) == 1


def test_salaries_and_payments_to_others_are_not_excess(fed):
    k, prod, prop = _prod_plan(fed)
    fed.token(prod, prop, 100, k["ana"])
    fed.token(prod, prop, 100, k["mill"])  # paid to another council's key
    assert yearend.excess_credits(fed.st, prod.kid, 2026) == 0
    accept(fed.led, _ye(prod, 90, 2026, [], 800))
    assert _nothing_stranded(fed, prod, 2026) == 2


def test_excess_credits_follow_issue_set_user_use_and_year_end(fed):
    k, prod, prop = _prod_plan(fed)
    got = []
    a = fed.token(prod, prop, 300)
    got.append(yearend.excess_credits(fed.st, prod.kid, 2026))
    accept(fed.led, B.set_user(prod, a.fields[0], prod))  # still the council's: still excess
    got.append(yearend.excess_credits(fed.st, prod.kid, 2026))
    b = fed.token(prod, prop, 200, k["ana"])  # a salary: never excess
    got.append(yearend.excess_credits(fed.st, prod.kid, 2026))
    accept(fed.led, B.use(k["ana"], b.fields[0], "50", "50"))
    accept(fed.led, B.use(prod, a.fields[0], "40", "40"))
    got.append(yearend.excess_credits(fed.st, prod.kid, 2026))
    assert fed.led.submit(B.use(prod, a.fields[0], "41", "41")).code == ctb.CONFLICT  # takes nothing off twice
    got.append(yearend.excess_credits(fed.st, prod.kid, 2026))
    assert got == [300, 300, 300, 0, 0]


def test_change_tokens_are_not_year_excess(fed):
    """Change tokens have no plan year: excess counts only normal ones."""
    prop = fed.plan(fed.k["prod"], 2026, [("40", 1, 10)])
    fed.token(fed.k["prod"], prop, 10)
    assert yearend.excess_credits(fed.st, fed.k["prod"].kid, 2026) == 10
    assert yearend.excess_credits(fed.st, fed.k["prod"].kid, 2027) == 0
    assert yearend.excess_credits(fed.st, fed.k["mill"].kid, 2026) == 0


def test_year_end_in_parts_closes_only_with_the_last(fed):
    _, prod, prop = _prod_plan(fed)
    toks = [fed.token(prod, prop, 100) for _ in range(3)]
    part = _ye(prod, 90, 2026, toks[:2], 700, part=True)
    accept(fed.led, part)
    assert not yearend.closed(fed.st, prod.kid, 2026)
    assert [ctb.token_state(fed.st.get(b"T" + t.fields[0])) for t in toks] == [ctb.ACCOUNTED] * 2 + [ctb.ISSUED]
    # the year is open: more may be issued, and the closing part must list it too
    late = fed.token(prod, prop, 50)
    rejected(fed.led, fed.st, _ye(prod, 91, 2026, toks[2:], 650), "excess-unlisted")
    accept(fed.led, _ye(prod, 92, 2026, [toks[2], late], 650))
    assert yearend.closed(fed.st, prod.kid, 2026)
    assert ctb.amount(fed.st.get(b"A" + ids.pack("99012026"))) == 350
    assert _nothing_stranded(fed, prod, 2026) == 4


def test_year_end_part_marker_must_be_one(fed):
    rec = B.publication(fed.k["prod"], 90, "year-end", 2026, {1: [], 2: 0, 3: 2})
    v = rejected(fed.led, fed.st, rec, "bad-publication")
    assert v.detail == "content key 3 marks a part: it is 1 or absent"


def test_set_user_to_own_key_after_the_year_end_accounted_it_changes_nothing(fed):
    k, prod, prop = _prod_plan(fed)
    t = fed.token(prod, prop, 300)
    accept(fed.led, _ye(prod, 90, 2026, [t], 700))
    before = [(kk, cbor.dumps(v)) for kk, v in sorted(fed.st.kv.items())]
    # one signed by another council is still a forgery (the record id covers the content, not the signer)
    rejected(fed.led, fed.st, B.set_user(k["mill"], t.fields[0], prod), "bad-signature")
    accept(fed.led, B.set_user(prod, t.fields[0], prod))  # signed before the close, arrived after
    assert [(kk, cbor.dumps(v)) for kk, v in sorted(fed.st.kv.items())] == before
    # naming anyone else contradicts the year end
    rejected(fed.led, fed.st, B.set_user(prod, t.fields[0], k["ana"]), "already-usable")


# -- arrival order -----------------------------------------------------------

def _scenario():
    """A council's year: approved plan, tokens in every state, a year end
    listing exactly the excess ones. Returns (records, its Fed-like keys)."""
    k = Fed().k
    prod = k["prod"]
    electorate = Fed().electorate
    prop = B.proposal(prod, 50, 2026, [("40", 1, 1000)])
    op = B.votation_open(prod, 51, "approve", prop.fields[0], electorate, mid_year(2026) + 30 * 86400)
    votes = [B.vote(s, op.fields[0], "yes") for s in electorate[:3]]
    close = B.votation_close(prod, op, votes, mid_year(2026))
    issued = B.issue(prod, 60, 100, prop.fields[0])  # excess: ISSUED
    own = B.issue(prod, 61, 200, prop.fields[0])  # excess: USABLE by the council
    salary = B.issue(prod, 62, 150, prop.fields[0])  # not excess: a member's
    spent = B.issue(prod, 63, 50, prop.fields[0])  # not excess: used by the council
    recs = [prop, op, close, issued, own, salary, spent, B.member(prod, k["ana"], "member"),
            B.set_user(prod, own.fields[0], prod), B.set_user(prod, salary.fields[0], k["ana"]),
            B.set_user(prod, spent.fields[0], prod), B.use(prod, spent.fields[0], "40", "40"),
            _ye(prod, 70, 2026, [issued, own], 500)] + votes
    return recs, k


def _one_at_a_time(order):
    """Submit records one by one as a mesh would deliver them, offering the
    refused ones again after each pass (as sync does) until none is taken."""
    f = Fed()
    todo = list(order)
    while todo:
        left = [r for r in todo if f.led.submit(r).code == ctb.REJECTED]
        if len(left) == len(todo):
            break
        todo = left
    return f, todo


def test_year_end_first_is_held_then_taken():
    recs, k = _scenario()
    ye = recs[12]
    f = Fed()
    v = f.led.submit(ye)
    assert (v.code, v.reason) == (ctb.REJECTED, "unknown-token")
    accept(f.led, *sorted(recs[:12] + recs[13:], key=lambda r: r.type))
    assert f.led.submit(ye).code == ctb.ACCEPTED


def test_year_end_before_the_set_user_or_use_that_makes_a_token_not_excess_is_held():
    recs, k = _scenario()
    ye = recs[12]
    without = sorted([r for r in recs if r is not ye and r.type not in (R.SET_USER, R.USE)], key=lambda r: r.type)
    f = Fed()
    accept(f.led, *without)
    v = f.led.submit(ye)  # the salary and the spent token still look excess here
    assert (v.code, v.reason) == (ctb.REJECTED, "excess-unlisted")
    assert v.detail == "%s's excess tokens of 2026 hold 500 credits; this year end lists 300" % k["prod"].kid.hex()
    accept(f.led, *[r for r in recs if r.type in (R.SET_USER, R.USE)])
    accept(f.led, ye)


def test_every_arrival_order_ends_in_one_state():
    """Shuffled one-at-a-time deliveries (with re-offers) and shuffled
    batches all accept every record and end in the same state and the same
    record set, with nothing stranded."""
    recs, k = _scenario()
    rnd = random.Random(2026)
    want = None
    orders = [recs, list(reversed(recs))] + [rnd.sample(recs, len(recs)) for _ in range(60)]
    # the year end first, the set-users last: the orders the rule is about
    ye = recs[12]
    orders.append([ye] + [r for r in recs if r is not ye and r.type != R.SET_USER] +
                  [r for r in recs if r.type == R.SET_USER])
    for order in orders:
        f, left = _one_at_a_time(order)
        assert left == [], [(r, f.led.submit(r)) for r in left]
        got = _state(f)
        want = want or got
        assert got == want
        assert _nothing_stranded(f, k["prod"], 2026) == 4
    for order in orders[:12]:
        f = Fed()
        ov, verdicts = ctb.apply_batch(f.st, order)
        assert all(v.code == ctb.ACCEPTED for v in verdicts), [v for v in verdicts if not v.ok]
        f.st.absorb(ov)
        assert _state(f) == want
    assert ctb.amount(f.st.get(b"A" + ids.pack("99012026"))) == 300


# -- sums of token values ------------------------------------------------------

def test_a_councils_proposals_of_a_year_fit_a_uint(fed):
    prod = fed.k["prod"]
    accept(fed.led, B.proposal(prod, 1, 2026, [("40", 1, 2 ** 63)]))
    v = rejected(fed.led, fed.st, B.proposal(prod, 2, 2026, [("40", 1, 2 ** 63)]), "bad-field")
    assert v.detail == "the council's proposals for 2026 would exceed 2^64-1 credits"
    accept(fed.led, B.proposal(prod, 3, 2026, [("40", 1, 2 ** 63 - 1)]))  # exactly 2^64-1 in all
    accept(fed.led, B.proposal(prod, 4, 2027, [("40", 1, 2 ** 63)]))  # another year
    accept(fed.led, B.proposal(fed.k["mill"], 1, 2026, [("40", 1, 2 ** 63)]))  # another council


def _two_max_tokens(f, user):
    """Two tokens of 2^64-1 credits, from two councils, usable by user."""
    out = []
    for name in ("prod", "mill"):
        prop = f.plan(f.k[name], 2026, [("40", 1, U64)])
        out.append(f.token(f.k[name], prop, U64, user))
    return out


def test_an_account_past_2_64_is_stored_as_limbs_in_any_order():
    f = Fed()
    a, b = _two_max_tokens(f, f.k["cons"])
    uses = [B.use(f.k["cons"], t.fields[0], "50", "501") for t in (a, b)]
    g = Fed()
    _two_max_tokens(g, g.k["cons"])
    accept(f.led, *uses)
    accept(g.led, *reversed(uses))
    acct = ids.pack("501")
    assert f.st.get(b"A" + acct) == [1, U64 - 1]  # 2^65 - 2 as 64-bit limbs
    assert ctb.amount(f.st.get(b"A" + acct)) == 2 * U64 == ctb.amount(f.st.get(b"Q" + ids.pack("50")))
    assert ctb.amount(f.st.get(b"N" + acct)) == 2 * U64
    assert _state(f) == _state(g)
    cbor.dumps(f.st.get(b"A" + acct))  # encodable: the store can write it
    # a double spend that wins (lower id) moves the credit away: back under 2^64, the plain integer again
    second = next(u for u in (B.use(f.k["cons"], b.fields[0], "50", "5%02d" % i) for i in range(10, 99))
                  if u.id < uses[1].id)
    assert f.led.submit(second).code == ctb.CONFLICT
    assert f.st.get(b"A" + acct) == U64 == f.st.get(b"A" + second.fields[2])
    assert ctb.amount(f.st.get(b"Q" + ids.pack("50"))) == 2 * U64


@pytest.mark.parametrize("n,stored", [(0, 0), (U64, U64), (U64 + 1, [1, 0]), (2 * U64, [1, U64 - 1]),
                                      (2 ** 128, [1, 0, 0])])
def test_amount_round_trip(n, stored):
    assert ctb._stored(n) == stored
    assert ctb.amount(stored) == n
    assert ctb.amount(cbor.loads(cbor.dumps(stored))) == n



def test_the_sqlite_store_gives_one_state_digest_whatever_comes_first():
    """The same through the SQLite CTB, one record per batch: the year end
    first (held), and the set-users last, against the natural order."""
    from pen.store import BatchRejected, SQLiteCTB
    recs, k = _scenario()
    base = Fed()
    founding = [R.parse(raw) for _, raw in sorted(base.st.recs.items())]
    founding.sort(key=lambda r: r.type)
    ye = recs[12]
    digests = []
    for order in (sorted(recs, key=lambda r: r.type),
                  [ye] + [r for r in recs if r is not ye and r.type != R.SET_USER] +
                  [r for r in recs if r.type == R.SET_USER]):
        store = SQLiteCTB(":memory:")
        store.submit([r.raw for r in founding])
        todo = list(order)
        while todo:
            left = []
            for r in todo:
                try:
                    store.submit([r.raw])
                except BatchRejected:
                    left.append(r)
            assert len(left) < len(todo)
            todo = left
        digests.append(store.state_digest())
        assert ctb.amount(store.get(b"A" + ids.pack("99012026"))) == 300
        store.close()
    assert digests[0] == digests[1]



@pytest.mark.micropython
def test_sums_past_2_64_under_micropython(mpy):
    """The same limbs on MicroPython's big integers: a Ledger credits two
    tokens of 2^64-1 into one account and the state encodes."""
    out = mpy("""
from pen_protocol import ctb, cbor
U = 0xFFFFFFFFFFFFFFFF
st = ctb.MemoryState()
led = ctb.Ledger(st)
t = [0, U, 0, b'', b'k', [], []]
for i in range(2):
    u = [bytes([i]) * 16, b'P', b'A']
    led._credit(t, u, U)
print(st.get(b'AA'), ctb.amount(st.get(b'AA')) == 2 * U, len(cbor.dumps(st.get(b'AA'))))
print(ctb._stored(2 ** 128), ctb.amount(cbor.loads(cbor.dumps(ctb._stored(2 ** 128)))) == 2 ** 128)
led._credit(t, [b'x' * 16, b'P', b'A'], -U)
print(st.get(b'AA'))
""", heap="160k")
    assert out.split("\n")[:3] == ["[1, 18446744073709551614] True 11", "[1, 0, 0] True",
                                   "18446744073709551615"]
