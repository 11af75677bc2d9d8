"""The ledger attacks of issue 10 (items 1-7 and key-id squatting), each tried
as an attacker would and refused with its exact reason; a refused record
changes nothing. docs/threat-model.md names each test."""
import pytest

from pen import build as B
from pen.keys import Signer
from pen.samples import economy, T0
from pen_protocol import ctb, records as R, sign, votation as VT

from .conftest import everyone, ok, rejected

YEAR_2027 = 1798761600  # 2027-01-01T00:00:00Z


def pass_votation(led, owner, serial, subject, about, k, voters, time=T0 + 3600, epoch=0, electorate=None):
    op = B.votation_open(owner, serial, subject, about, electorate or everyone(k), T0 + 86400, epoch)
    votes = [B.vote(s, op.fields[0], "yes") for s in voters]
    close = B.votation_close(owner, op, votes, time)
    ok(led, op, *votes, close)
    return op, close


# -- 1. the electorate is the real councils, not the opener's list ------------

def test_self_electorate_votation_is_refused(eco):
    k, n, st, led = eco
    hub = k["supply-hub"]
    prop = B.proposal(hub, 1, 2026, [("40141600", 1, 10 ** 9)])
    ok(led, prop)
    rejected(led, st, B.votation_open(hub, 1, "approve", prop.fields[0], [hub], T0 + 86400), "bad-electorate")
    # the same with the real councils named but one left out, or a stranger added
    rejected(led, st, B.votation_open(hub, 1, "approve", prop.fields[0], everyone(k)[:4], T0 + 86400),
             "bad-electorate")
    rogue = Signer.from_phrase("rogue")
    ok(led, B.council(rogue, "Rogue", "production"))
    rejected(led, st, B.votation_open(hub, 1, "approve", prop.fields[0], everyone(k) + [rogue], T0 + 86400),
             "bad-electorate")
    # with the real electorate, the opener's own yes is 1 of 5: not passed, no credits
    op = B.votation_open(hub, 1, "approve", prop.fields[0], everyone(k), T0 + 86400)
    yes = B.vote(hub, op.fields[0], "yes")
    ok(led, op, yes)
    rejected(led, st, B.votation_close(hub, op, [yes], T0 + 3600), "too-early")
    ok(led, B.votation_close(hub, op, [yes], T0 + 86400))
    rejected(led, st, B.issue(hub, 1, 10 ** 9, prop.fields[0]), "not-approved")


def test_votation_verify_checks_the_electorate_against_the_ctb(eco):
    k, n, st, led = eco
    hub = k["supply-hub"]
    # a forged chain: the opener's own electorate, replayed from records alone
    # (the file's councils are trusted), then checked against a real CTB
    prop = B.proposal(hub, 1, 2026, [("40141600", 1, 10 ** 9)])
    op = B.votation_open(hub, 1, "approve", prop.fields[0], [hub], T0 + 86400)
    yes = B.vote(hub, op.fields[0], "yes")
    chain = [B.council(hub, "Supply Hub", "production").raw, prop.raw, op.raw, yes.raw,
             B.votation_close(hub, op, [yes], T0 + 3600).raw]
    alone = VT.verify(chain)
    assert alone.passed  # what the records alone say...
    rep = VT.verify(chain, ctb_state=st)
    assert not rep.ok  # ...and what the CTB's membership says
    assert ("votation-open", "bad-electorate",
            "the electorate must be exactly the councils of epoch 0") in rep.problems


def test_rogue_council_cannot_admit_itself(eco):
    k, n, st, led = eco
    hub = k["supply-hub"]
    rogue = Signer.from_phrase("rogue")
    council = B.council(rogue, "Rogue", "production")
    ok(led, council)
    # a member council opening the ADMIT: only the economy's federation holds it
    rejected(led, st, B.votation_open(hub, 1, "admit", B.membership_about(council), everyone(k), T0 + 86400),
             "not-the-federation")
    # the rogue itself, not a council of the epoch, cannot open anything
    rejected(led, st, B.votation_open(rogue, 1, "other", "let me in", everyone(k), T0 + 86400),
             "not-in-electorate")
    # nor vote in a real ADMIT of itself
    fed = k["valley-federation"]
    op = B.votation_open(fed, 1, "admit", B.membership_about(council), everyone(k), T0 + 86400)
    ok(led, op)
    rejected(led, st, B.vote(rogue, op.fields[0], "yes"), "not-in-electorate")
    assert not ctb.is_admitted(st, rogue.kid)


def test_dismember_needs_the_federation_and_a_majority(eco):
    k, n, st, led = eco
    fed, fp, vc = k["valley-federation"], k["formosa-plumbing"], k["village-consumers"]
    victim = B.council(k["supply-hub"], "Supply Hub", "production", fed)
    rejected(led, st, B.votation_open(fp, 5, "dismember", B.membership_about(victim), everyone(k), T0 + 86400),
             "not-the-federation")
    op = B.votation_open(fed, 1, "dismember", B.membership_about(victim), everyone(k), T0 + 86400)
    votes = [B.vote(s, op.fields[0], "yes") for s in (fed, fp)]
    ok(led, op, *votes, B.votation_close(fed, op, votes, T0 + 86400))
    assert ctb.is_admitted(st, k["supply-hub"].kid) and ctb.epoch(st) == 0
    # attempt 1 at epoch 0, now that attempt 0 failed; a majority this time
    op = B.votation_open(fed, 2, "dismember", B.membership_about(victim, 1), everyone(k), T0 + 86400)
    votes = [B.vote(s, op.fields[0], "yes") for s in (fed, fp, vc)]
    ok(led, op, *votes, B.votation_close(fed, op, votes, T0 + 3600))
    assert not ctb.is_admitted(st, k["supply-hub"].kid)
    assert ctb.epoch(st) == 1 and k["supply-hub"].kid not in ctb.electorate_of(st, 1)
    # the dismembered council can no longer open or vote at the new epoch
    now = [s for s in everyone(k) if s is not k["supply-hub"]]
    rejected(led, st, B.votation_open(k["supply-hub"], 7, "other", "x", now, T0 + 86400, 1), "not-in-electorate")
    # and the federation cannot dismember itself (membership would have no holder)
    own = B.council(fed, "Valley Federation", "federation")
    rejected(led, st, B.votation_open(fed, 3, "dismember", B.membership_about(own), now, T0 + 86400, 1),
             "bad-subject")


def test_membership_votations_form_one_chain(eco):
    k, n, st, led = eco
    fed, fp, vc = k["valley-federation"], k["formosa-plumbing"], k["village-consumers"]
    a, b = Signer.from_phrase("newcomer-a"), Signer.from_phrase("newcomer-b")
    ca, cb = B.council(a, "A", "production", fed), B.council(b, "B", "production", fed)
    ok(led, ca, cb)
    op0 = B.votation_open(fed, 1, "admit", B.membership_about(ca), everyone(k), T0 + 86400)
    ok(led, op0)
    # a second membership votation on the same epoch slot, or the next attempt before this one failed
    rejected(led, st, B.votation_open(fed, 2, "admit", B.membership_about(cb), everyone(k), T0 + 86400),
             "membership-slot-taken")
    rejected(led, st, B.votation_open(fed, 2, "admit", B.membership_about(cb, 1), everyone(k), T0 + 86400),
             "membership-pending")
    # pinning the next epoch before it exists
    rejected(led, st, B.votation_open(fed, 2, "admit", B.membership_about(cb), everyone(k) + [a], T0 + 86400, 1),
             "unknown-epoch")
    votes = [B.vote(s, op0.fields[0], "yes") for s in (fed, fp, vc)]
    ok(led, *votes, B.votation_close(fed, op0, votes, T0 + 3600))
    assert ctb.epoch(st) == 1 and ctb.is_admitted(st, a.kid)
    # once attempt 0 passed, epoch 0 is closed for membership
    rejected(led, st, B.votation_open(fed, 2, "admit", B.membership_about(cb, 1), everyone(k), T0 + 86400),
             "membership-slot-taken")
    # epoch 1's electorate is six councils; five are no longer the electorate
    rejected(led, st, B.votation_open(fed, 2, "admit", B.membership_about(cb), everyone(k), T0 + 86400, 1),
             "bad-electorate")
    ok(led, B.votation_open(fed, 2, "admit", B.membership_about(cb), everyone(k) + [a], T0 + 86400, 1))


# -- 2. an ACCOUNTED use is final --------------------------------------------

def test_grinding_a_lower_use_id_after_accounted_moves_no_credit(eco):
    k, n, st, led = eco
    fp = k["formosa-plumbing"]
    tok = n["issue"].fields[0]
    shop_account = n["use"].fields[2]
    before = st.get(b"A" + shop_account)
    assert ctb.is_accounted(st.get(b"T" + tok))
    lower = None
    for i in range(200):  # the payer grinds account numbers until its USE sorts first
        acct = "5%011d" % i
        u = B.use(fp, tok, acct, acct)
        v = led.submit(u)
        assert (v.code, v.reason) == (ctb.CONFLICT, "double-spend")
        # evidence names the payer: both halves verify under its key
        a, b = R.parse(v.evidence.fields[0]), R.parse(v.evidence.fields[1])
        assert {a.id, b.id} == {n["use"].id, u.id}
        assert st.get(b"A" + u.fields[2]) is None
        if u.id < n["use"].id:
            lower = u
            break
    assert lower is not None
    t = st.get(b"T" + tok)
    assert ctb.use_id(ctb.effective_use(t)) == n["use"].id
    assert st.get(b"A" + shop_account) == before


def test_concurrent_receipts_at_two_ctb_nodes_resolve_deterministically():
    k, ordered, n = economy()
    fp, fed = k["formosa-plumbing"], k["valley-federation"]
    node2 = Signer.from_phrase("second-node")
    base = [r for r in ordered[:-1] if r.type not in (R.USE, R.ACCOUNTED)] + [B.member(fed, node2, "node")]
    tok = n["issue"].fields[0]
    u1, u2 = n["use"], B.use(fp, tok, "40171500", "40171500")
    r1 = B.accounted(k["common-node"], tok, u1.id, T0 + 10)
    r2 = B.accounted(node2, tok, u2.id, T0 + 10)
    # node 1 saw only u1 and accounted it; node 2 saw only u2 and accounted it
    states = []
    for order in ([u1, r1, u2, r2], [u2, r2, u1, r1], [u1, u2, r2, r1]):
        st = ctb.MemoryState()
        led = ctb.Ledger(st)
        for r in base + order:
            assert led.submit(r).ok
        states.append(repr(sorted(st.kv.items())))
        win = min(u1, u2, key=lambda u: u.id)
        assert ctb.use_id(ctb.effective_use(st.get(b"T" + tok))) == win.id
        assert st.get(b"A" + win.fields[2]) >= 30000
    assert len(set(states)) == 1


# -- 3. change is covered per exchange account, owned by its shop ------------

def _exchange(led, k, shop, serial, amount, account, epoch=0):
    fed, fp, vc = k["valley-federation"], k["formosa-plumbing"], k["village-consumers"]
    op, _ = pass_votation(led, shop, serial, "exchange", B.exchange_about(shop, amount, account), k, (fed, fp, vc),
                          epoch=epoch)
    return op.fields[0]


def _pay_into(led, k, n, serial, value, account):
    fp = k["formosa-plumbing"]
    carlos = Signer.from_phrase("carlos")
    t = B.issue(fp, serial, value, n["proposal"].fields[0])
    ok(led, t, B.set_user(fp, t.fields[0], carlos), B.use(carlos, t.fields[0], account, account))
    return t


def test_two_allowances_on_one_account_cannot_double_count_the_cover(eco):
    k, n, st, led = eco
    shop = k["village-store"]
    x1 = _exchange(led, k, shop, 1, 10000, "841215000001")
    x2 = _exchange(led, k, shop, 2, 10000, "841215000001")
    _pay_into(led, k, n, 10, 10000, "841215000001")
    c1 = B.issue(shop, 1, 10000, x1, change=True)
    c2 = B.issue(shop, 2, 10000, x2, change=True)
    ok(led, c1, c2, B.set_user(shop, c1.fields[0], shop))
    rejected(led, st, B.set_user(shop, c2.fields[0], shop), "exchange-not-covered")
    assert ctb.account_released(st.get(b"O" + R.ids.pack("841215000001"))) == 10000


def test_another_shops_account_shares_its_cover_and_never_doubles_it(eco):
    k, n, st, led = eco
    shop, hub = k["village-store"], k["supply-hub"]
    x1 = _exchange(led, k, shop, 1, 10000, "841215000001")
    _pay_into(led, k, n, 10, 10000, "841215000001")
    # the hub names the store's account: an opening is only a request, and
    # without a majority it gives the hub nothing
    op = B.votation_open(hub, 1, "exchange", B.exchange_about(hub, 10000, "841215000001"), everyone(k),
                         T0 + 86400)
    alone = B.vote(hub, op.fields[0], "yes")
    ok(led, op, alone, B.votation_close(hub, op, [alone], T0 + 86400))
    rejected(led, st, B.issue(hub, 1, 10000, op.fields[0], change=True), "no-exchange-allowance")
    # had a majority approved it, the account's one cover is shared, never doubled
    x2 = _exchange(led, k, hub, 2, 10000, "841215000001")
    assert ctb.account_shops(st.get(b"O" + R.ids.pack("841215000001"))) == sorted([shop.kid, hub.kid])
    c1, c2 = B.issue(shop, 1, 6000, x1, change=True), B.issue(hub, 1, 6000, x2, change=True)
    ok(led, c1, c2, B.set_user(shop, c1.fields[0], shop))
    rejected(led, st, B.set_user(hub, c2.fields[0], hub), "exchange-not-covered")


def test_change_paid_back_into_the_exchange_account_is_no_cover(eco):
    k, n, st, led = eco
    shop = k["village-store"]
    carlos = Signer.from_phrase("carlos")
    x = _exchange(led, k, shop, 1, 20000, "841215000001")
    _pay_into(led, k, n, 10, 5000, "841215000001")
    c1, c2 = B.issue(shop, 1, 5000, x, change=True), B.issue(shop, 2, 5000, x, change=True)
    ok(led, c1, c2, B.set_user(shop, c1.fields[0], carlos))
    # Carlos pays the change back into the exchange account: it is not normal credit
    ok(led, B.use(carlos, c1.fields[0], "841215000001", "841215000001"))
    rejected(led, st, B.set_user(shop, c2.fields[0], carlos), "exchange-not-covered")


# -- 4. only CTB-node keys sign ACCOUNTED -------------------------------------

def test_receipt_signed_by_a_council_key_is_refused(eco):
    k, n, st, led = eco
    fp = k["formosa-plumbing"]
    t = _pay_into(led, k, n, 10, 100, "401416000099")
    u = R.parse(st.get_record(ctb.use_id(ctb.effective_use(st.get(b"T" + t.fields[0])))))
    v = rejected(led, st, B.accounted(fp, t.fields[0], u.id, T0), "not-a-ctb-node")
    assert "role node" in v.detail
    plain = Signer.from_phrase("plain-member")
    ok(led, B.member(fp, plain, "member"))
    rejected(led, st, B.accounted(plain, t.fields[0], u.id, T0), "not-a-ctb-node")
    ok(led, B.accounted(k["common-node"], t.fields[0], u.id, T0))


def test_a_member_council_cannot_certify_its_own_ctb_node(eco):
    k, n, st, led = eco
    hub = k["supply-hub"]
    own_node = Signer.from_phrase("hub-node")
    v = rejected(led, st, B.member(hub, own_node, "node"), "not-the-federation")
    assert "node keys" in v.detail
    ok(led, B.member(hub, own_node, "register"))  # other roles stay the council's own business
    t = _pay_into(led, k, n, 10, 100, "401416000099")
    u = ctb.effective_use(st.get(b"T" + t.fields[0]))
    rejected(led, st, B.accounted(own_node, t.fields[0], ctb.use_id(u), T0), "not-a-ctb-node")



def test_node_role_is_a_membership_like_any_other(eco):
    """Memberships (membership.py: one key, several councils) and the node
    certification are one store: a node key that is also a plain member
    of a council sorting before the federation (its b"K" then names that
    membership) still accounts, and a member key cannot be made a node by
    its own council through the several-memberships path."""
    k, n, st, led = eco
    fed, node = k["valley-federation"], k["common-node"]
    before = [c for c in everyone(k) if c.kid < fed.kid]
    assert before, "the sample needs a council sorting before the federation"
    ok(led, B.member(before[0], node, "member"))
    assert st.get(b"K" + node.kid)[1] == before[0].kid  # the smallest membership is not the node one
    t = _pay_into(led, k, n, 10, 100, "401416000099")
    u = ctb.effective_use(st.get(b"T" + t.fields[0]))
    ok(led, B.accounted(node, t.fields[0], ctb.use_id(u), T0))
    hub = k["supply-hub"]
    member = Signer.from_phrase("hub-member")
    ok(led, B.member(hub, member, "member"))
    v = rejected(led, st, B.member(hub, member, "node"), "not-the-federation")
    assert "node keys" in v.detail
    t2 = _pay_into(led, k, n, 11, 100, "401416000099")
    u2 = ctb.effective_use(st.get(b"T" + t2.fields[0]))
    rejected(led, st, B.accounted(member, t2.fields[0], ctb.use_id(u2), T0), "not-a-ctb-node")


# -- 5. every founder consents to genesis; ADMIT held by the federation -------

def _councils():
    k, ordered, n = economy()
    return k, [r for r in ordered if r.type == R.COUNCIL]


def test_genesis_without_every_founders_consent_is_refused():
    k, councils = _councils()
    founders = everyone(k)
    st = ctb.MemoryState()
    led = ctb.Ledger(st)
    ok(led, *councils)
    good = B.genesis(founders, "Valley economy", T0)
    kids = good.fields[1]
    # the first founder alone signs, putting its own signature where the others' consents go
    own = B.genesis_consent(founders[0], "Valley economy", founders, T0)
    forged = R.encode(R.GENESIS, ["Valley economy", kids, T0, [own] * len(kids)], founders[0])
    v = rejected(led, st, forged, "missing-consent")
    assert founders[1].kid.hex() in v.detail
    short = R.encode(R.GENESIS, ["Valley economy", kids, T0, good.fields[3][:1]], founders[0])
    rejected(led, st, short, "missing-consent")
    # a consent given to another economy's name does not carry over
    other = B.genesis(founders, "Another economy", T0)
    moved = R.encode(R.GENESIS, ["Valley economy", kids, T0, other.fields[3]], founders[0])
    rejected(led, st, moved, "missing-consent")
    ok(led, good)
    assert ctb.electorate_of(st, 0) == sorted(kids)


def test_admit_is_held_only_by_the_federation(eco):
    k, n, st, led = eco
    newcomer = Signer.from_phrase("newcomer")
    c = B.council(newcomer, "Newcomer", "production", k["valley-federation"])
    ok(led, c)
    for owner in everyone(k)[1:]:
        rejected(led, st, B.votation_open(owner, 3, "admit", B.membership_about(c), everyone(k), T0 + 86400),
                 "not-the-federation")
    ok(led, B.votation_open(k["valley-federation"], 3, "admit", B.membership_about(c), everyone(k), T0 + 86400))


# -- 6. exactly one vote per council counts ----------------------------------

def test_double_vote_counts_once_with_the_lowest_id(eco):
    k, n, st, led = eco
    fed, fp, vc, hub = k["valley-federation"], k["formosa-plumbing"], k["village-consumers"], k["supply-hub"]
    op = B.votation_open(hub, 1, "other", "a well", everyone(k), T0 + 86400)
    ok(led, op)
    twice = [B.vote(fp, op.fields[0], c) for c in ("yes", "no")]
    low = min(twice, key=lambda r: r.id)
    high = max(twice, key=lambda r: r.id)
    for r in (high, low):  # the higher id first: the lower still wins
        led.submit(r)
    others = [B.vote(s, op.fields[0], "yes") for s in (fed, vc)]
    ok(led, *others)
    v = st.get(b"V" + op.fields[0])
    assert ctb.counted_votes(v)[fp.kid] == [low.fields[2], low.id]
    # a close counting both votes of the council is refused; counting the lowest is the tally
    yes = 2 + (low.fields[2] == R.YES)
    bad = R.encode(R.VOTATION_CLOSE, [op.fields[0], op.id, 3, 1, 0, sorted(r.id for r in twice + others),
                                      T0 + 86400], hub)
    rejected(led, st, bad, "tally-mismatch")
    good = B.votation_close(hub, op, twice + others, T0 + 86400)
    assert good.fields[2:5] == [yes, 3 - yes, 0]
    ok(led, good)
    assert ctb.votation_result(st.get(b"V" + op.fields[0]))[:4] == [yes, 3 - yes, 0, 2 * yes > 5]


# -- 7. issuance is checked against the proposal's year ----------------------

def test_approval_outside_the_proposals_year_is_refused(eco):
    k, n, st, led = eco
    fed, fp, vc = k["valley-federation"], k["formosa-plumbing"], k["village-consumers"]
    old = B.proposal(fp, 2, 2019, [("40141600", 1, 5000)])
    ok(led, old)
    rejected(led, st, B.votation_open(fp, 2, "approve", old.fields[0], everyone(k), T0 + 86400), "wrong-year")
    nxt = B.proposal(fp, 3, 2026, [("40141600", 1, 5000)])
    ok(led, nxt)
    op = B.votation_open(fp, 3, "approve", nxt.fields[0], everyone(k), T0 + 86400)
    votes = [B.vote(s, op.fields[0], "yes") for s in (fed, fp, vc)]
    ok(led, op, *votes)
    rejected(led, st, B.votation_close(fp, op, votes, YEAR_2027), "wrong-year")
    rejected(led, st, B.issue(fp, 9, 10, nxt.fields[0]), "not-approved")
    ok(led, B.votation_close(fp, op, votes, YEAR_2027 - 1))
    ok(led, B.issue(fp, 9, 10, nxt.fields[0]))


# -- 13. key-id squatting gains nothing ---------------------------------------

def _colliding_keys(monkeypatch):
    """A victim's key and a squatter's whose key ids collide (a 32-bit collision costs ~91 core-hours;
    here sign.kid gives the squatter the victim's kid)."""
    victim, squatter = Signer.from_phrase("victim"), Signer.from_phrase("squatter")
    real_kid = sign.kid
    monkeypatch.setattr(sign, "kid", lambda pk: real_kid(victim.public_key) if bytes(pk) == squatter.public_key
                        else real_kid(pk))
    return victim, squatter


def test_a_squatted_key_id_cannot_be_admitted_as_its_victim(eco, monkeypatch):
    k, n, st, led = eco
    fed, fp, vc = k["valley-federation"], k["formosa-plumbing"], k["village-consumers"]
    victim, squatter = _colliding_keys(monkeypatch)
    squat = B.council(squatter, "Victim Coop", "production", fed)
    real = B.council(victim, "Victim Coop", "production", fed)
    ok(led, squat)
    rejected(led, st, real, "key-exists")  # the victim must make a new key: a nuisance, not a theft
    # the councils vote to admit the victim they met: its COUNCIL record, so its full key
    rejected(led, st, B.votation_open(fed, 1, "admit", B.membership_about(real), everyone(k), T0 + 86400),
             "unknown-council")
    assert not ctb.is_admitted(st, victim.kid)


def test_a_late_squatter_is_refused_and_named_records_bind_the_key(eco, monkeypatch):
    k, n, st, led = eco
    fed = k["valley-federation"]
    victim, squatter = _colliding_keys(monkeypatch)
    real = B.council(victim, "Victim Coop", "production", fed)
    squat = B.council(squatter, "Victim Coop", "production", fed)
    ok(led, real)
    rejected(led, st, squat, "key-exists")
    # an ADMIT naming the squatter's record (same kid, other key) is refused
    rejected(led, st, B.votation_open(fed, 1, "admit", B.membership_about(squat), everyone(k), T0 + 86400),
             "unknown-council")
    ok(led, B.votation_open(fed, 1, "admit", B.membership_about(real), everyone(k), T0 + 86400))


def test_forged_consent_is_refused_on_the_stores_bulk_verify_path(tmp_path):
    """The store checks a batch's signatures in bulk (pen.verifypool): the
    consents go through the same hook, so a forged one is found there too."""
    from pen.store import SQLiteCTB, BatchRejected
    from pen.verifypool import ParallelVerifier
    k, councils = _councils()
    founders = everyone(k)
    good = B.genesis(founders, "Valley economy", T0)
    sigs = list(good.fields[3])
    sigs[2] = B.genesis_consent(founders[0], "Valley economy", founders, T0)
    forged = R.encode(R.GENESIS, ["Valley economy", good.fields[1], T0, sigs], founders[0])
    store = SQLiteCTB(tmp_path / "c.sqlite", clock=lambda: T0)
    pool = ParallelVerifier(1)
    try:
        store.verifier = pool
        with pytest.raises(BatchRejected) as e:
            store.submit([r.raw for r in councils] + [forged.raw])
        assert e.value.verdict.reason == "missing-consent"
        assert store.count() == 0
        store.submit([r.raw for r in councils] + [good.raw])
        assert ctb.epoch(store) == 0
    finally:
        pool.close()


def test_admission_stops_where_an_opening_could_no_longer_list_the_electorate(eco, monkeypatch):
    k, n, st, led = eco
    fed = k["valley-federation"]
    newcomer = Signer.from_phrase("newcomer")
    c = B.council(newcomer, "Newcomer", "production", fed)
    ok(led, c)
    monkeypatch.setattr(R, "MAX_LIST", 5)  # the five founders fill it
    rejected(led, st, B.votation_open(fed, 3, "admit", B.membership_about(c), everyone(k), T0 + 86400),
             "electorate-full")


def test_a_double_spend_after_change_was_released_converges_with_evidence():
    """Mallory pays the store's exchange account, gets change, then spends the
    same token again with a lower id (before it is accounted). Whatever order
    peers learn this in, they agree: the release stands, the cover is not
    taken back, and the evidence names Mallory."""
    k, ordered, n = economy()
    shop, fp = k["village-store"], k["formosa-plumbing"]
    mallory = Signer.from_phrase("mallory")
    base = ctb.MemoryState()
    led = ctb.Ledger(base)
    ok(led, *ordered[:-1])
    x = _exchange(led, k, shop, 1, 10000, "841215000001")
    t = B.issue(fp, 10, 5000, n["proposal"].fields[0])
    ok(led, t, B.set_user(fp, t.fields[0], mallory))
    pay = B.use(mallory, t.fields[0], "841215000001", "841215000001")
    change = B.issue(shop, 1, 5000, x, change=True)
    release = B.set_user(shop, change.fields[0], mallory)
    grind = next(u for u in (B.use(mallory, t.fields[0], "5%011d" % i, "5%011d" % i) for i in range(200))
                 if u.id < pay.id)
    states = set()
    for order in ([pay, change, release, grind], [pay, grind, change, release], [grind, pay, change, release]):
        st = ctb.MemoryState()
        st.kv, st.recs = dict((kk, ctb._copy(v)) for kk, v in base.kv.items()), dict(base.recs)
        lo = ctb.Ledger(st)
        verdicts = [lo.submit(r) for r in order]
        assert all(v.ok for v in verdicts), verdicts
        assert any(v.reason == "double-spend" for v in verdicts)
        assert st.get(b"N" + R.ids.pack("841215000001")) == 5000  # the cover stays
        assert ctb.user(st.get(b"T" + change.fields[0])) == mallory.public_key
        states.add(repr(sorted((kk, R.cbor.dumps(v)) for kk, v in st.kv.items())))
    assert len(states) == 1
