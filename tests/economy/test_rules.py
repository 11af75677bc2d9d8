"""The economy's rules in the validator: publication schemas, who may
publish, several memberships per key, individual proposals, year end. Each
test asserts the exact refusal and that a refusal changes nothing."""
import pytest

from pen import build as B
from pen.keys import Signer
from pen_protocol import cbor, ctb, ids, publication as PUB, records as R, yearend

from .kit import Fed, accept, mid_year, rejected, snapshot, tokens_state

P = ids.pack


@pytest.fixture
def fed():
    return Fed()


# -- publications --------------------------------------------------------

@pytest.mark.parametrize("kind,subject,content,detail", [
    ("price", P("40141600"), {}, "content key 1 is required"),
    ("price", P("40141600"), {1: -1}, "content key 1 has the wrong form"),
    ("price", P("40141600"), {1: 5, 9: "x"}, "unknown content key 9"),
    ("price", "40141600", {1: 5}, "subject must be a product id"),
    ("price", P("40141600"), {1: 5, 2: ""}, "content key 2 has the wrong form"),
    ("product", P("40141600"), {1: "Valves", 2: 4}, "unknown product flags 4"),
    ("product", P("80111600"), {1: "Work", 2: PUB.WORK}, "work is measured in medium-effort hours: unit must be 'hour'"),
    ("product", P("80111600"), {1: "Work", 2: PUB.WORK, 3: "day"}, "work is measured in medium-effort hours: unit must be 'hour'"),
    ("council", b"\x00\x01\x02\x03", {1: "we"}, "a council publishes information about itself only"),
    ("accounts", 2026, {1: [[P("40"), 5], [P("41"), 6]], 2: 12}, "total 12 is not the sum of the accounts (11)"),
    ("accounts", 2026, {1: [[P("41"), 5], [P("40"), 6]], 2: 11}, "content key 1 has the wrong form"),
    ("accounts", 26, {1: [[P("40"), 5]], 2: 5}, "subject must be a year"),
    ("limit", P("50"), {1: 3}, "limits are set by consumption councils and federations"),
    ("product", P("401416000001"), {1: "Our valve"}, None),  # allowed: prod is a production council
])
def test_publication_schema_refusals(fed, kind, subject, content, detail):
    rec = B.publication(fed.k["prod"], fed.serial(), kind, subject, content)
    if detail is None:
        accept(fed.led, rec)
        return
    v = rejected(fed.led, fed.st, rec, "bad-publication")
    assert v.detail == detail


def test_specific_product_only_by_a_production_council(fed):
    rec = B.publication(fed.k["cons"], fed.serial(), "product", P("401416000001"), {1: "A valve"})
    v = rejected(fed.led, fed.st, rec, "bad-publication")
    assert "production council" in v.detail
    accept(fed.led, B.publication(fed.k["cons"], fed.serial(), "product", P("40141600"), {1: "Valves", 2: PUB.ANALOGUE}))


def test_valid_publications_of_every_kind_are_stored(fed):
    k = fed.k
    recs = [B.publication(k["prod"], 1, "price", P("40141600"), {1: 150, 2: "valve", 3: 2026}),
            B.publication(k["cons"], 2, "limit", P("50"), {1: 300, 2: "kg", 3: 2026}),
            B.publication(k["prod"], 3, "product", P("80111600"), {1: "Plumbing work", 2: PUB.WORK, 3: "hour"}),
            B.publication(k["prod"], 4, "council", k["prod"].kid, {1: "We make valves", 2: "Formosa"}),
            B.publication(k["prod"], 5, "accounts", 2026, {1: [[P("40"), 5], [P("41"), 6]], 2: 11})]
    accept(fed.led, *recs)
    assert fed.st.get(b"U" + recs[1].fields[0])[2] == {1: 300, 2: "kg", 3: 2026}


def test_sample_price_publication_still_valid():
    from pen.samples import check_valid
    _, verdicts = check_valid()
    assert all(v.ok for v in verdicts)


# -- memberships ---------------------------------------------------------

def test_one_key_holds_several_memberships_in_any_order(fed):
    k = fed.k
    a = B.member(k["cons"], k["ana"], "proposer")
    b = B.member(k["prod"], k["ana"], "member")
    accept(fed.led, a, b)
    other = Fed()
    accept(other.led, b, a)
    for f in (fed, other):
        held = f.st.get(b"R" + k["ana"].kid)
        assert sorted(held) == sorted([[k["cons"].kid, R.ROLE_PROPOSER], [k["prod"].kid, R.ROLE_MEMBER]])
    assert fed.st.get(b"K" + k["ana"].kid) == other.st.get(b"K" + k["ana"].kid)
    assert fed.st.get(b"R" + k["ana"].kid) == other.st.get(b"R" + k["ana"].kid)


def test_same_membership_twice_is_refused(fed):
    k = fed.k
    accept(fed.led, B.member(k["cons"], k["ana"], "proposer"), B.member(k["prod"], k["ana"], "member"))
    # a second certificate of the same pair differs only if re-signed: same bytes -> duplicate
    assert fed.led.submit(B.member(k["cons"], k["ana"], "proposer")).code == ctb.DUPLICATE


def test_council_key_cannot_become_a_member(fed):
    rejected(fed.led, fed.st, B.member(fed.k["cons"], fed.k["prod"], "member"), "key-exists")


def test_node_role_in_a_second_membership_signs_receipts(fed):
    k = fed.k
    node = Signer.from_phrase("eco-test/node")
    accept(fed.led, B.member(k["prod"], node, "member"), B.member(k["fed"], node, "node"))
    prop = fed.plan(k["prod"], 2026, [("40141600", 1, 100)])
    t = fed.token(k["prod"], prop, 100, k["prod"])
    use = B.use(k["prod"], t.fields[0], "40141600", "40141600")
    accept(fed.led, use, B.accounted(node, t.fields[0], use.id, 9))
    assert tokens_state(fed, t) == ctb.ACCOUNTED


# -- individual proposals -------------------------------------------------

def test_individual_proposer_files_a_consumption_proposal(fed):
    k = fed.k
    accept(fed.led, B.member(k["cons"], k["ana"], "proposer"))
    prop = B.proposal(k["ana"], 1, 2026, [("50", 100, 3000)])
    accept(fed.led, prop)
    assert fed.st.get(b"P" + prop.fields[0])[:2] == [3000, False]
    # an individual cannot put it to the vote: only councils own votations
    op = B.votation_open(k["ana"], 1, "approve", prop.fields[0], fed.electorate, mid_year(2026))
    before = snapshot(fed.st)
    v = fed.led.submit(op)
    # "unknown-council" here; "not-in-electorate" once votations pin an electorate epoch (ledger branch)
    assert v.code == ctb.REJECTED and v.reason in ("unknown-council", "not-in-electorate"), v
    assert snapshot(fed.st) == before


def test_plain_member_or_production_proposer_cannot_propose(fed):
    k = fed.k
    accept(fed.led, B.member(k["cons"], k["ana"], "member"), B.member(k["prod"], k["bo"], "proposer"))
    rejected(fed.led, fed.st, B.proposal(k["ana"], 1, 2026, [("50", 1, 1)]), "not-a-proposer")
    rejected(fed.led, fed.st, B.proposal(k["bo"], 1, 2026, [("50", 1, 1)]), "not-a-proposer")


def test_unknown_proposer_keeps_the_old_reason(fed):
    stranger = Signer.from_phrase("eco-test/stranger")
    rejected(fed.led, fed.st, B.proposal(stranger, 1, 2026, [("50", 1, 1)]), "unknown-council")


def test_proposal_year_must_be_a_year(fed):
    rejected(fed.led, fed.st, B.proposal(fed.k["prod"], 1, 26, [("50", 1, 1)]), "bad-field")


# -- year end ------------------------------------------------------------

def _year_end(fed, council, year, tokens, unissued):
    refs = sorted(t.fields[0] for t in tokens)
    return B.publication(council, fed.serial(), "year-end", year, {1: refs, 2: unissued})


def test_year_end_accounts_excess_into_the_special_account(fed):
    k = fed.k
    prod = k["prod"]
    prop = fed.plan(prod, 2026, [("40141600", 10, 1000)])
    left = fed.token(prod, prop, 300)  # ISSUED, never given out
    own = fed.token(prod, prop, 200, prod)  # USABLE by the council's own key
    salary = fed.token(prod, prop, 100, k["ana"])  # the member's, not excess
    accept(fed.led, _year_end(fed, prod, 2026, [left, own], 400))
    acct = ids.pack(yearend.excess_account(2026))
    assert yearend.excess_account(2026) == "99012026"
    assert fed.st.get(b"A" + acct) == 500 and fed.st.get(b"Q" + acct) == 500
    assert tokens_state(fed, left) == tokens_state(fed, own) == ctb.ACCOUNTED
    assert tokens_state(fed, salary) == ctb.USABLE
    # the member still spends her salary after year end
    accept(fed.led, B.use(k["ana"], salary.fields[0], "50", "50"))
    from pen.commands.ctb import balances

    class View:
        def state_prefix(self, p):
            return sorted((kk, v) for kk, v in fed.st.kv.items() if kk.startswith(p))

        def get(self, kk):
            return fed.st.get(kk)
    assert balances(View())["balanced"]


def test_closed_year_refuses_issue_proposal_set_user_and_own_use(fed):
    k = fed.k
    prod = k["prod"]
    prop = fed.plan(prod, 2026, [("40141600", 10, 1000)])
    left = fed.token(prod, prop, 100)
    own = fed.token(prod, prop, 100, prod)
    accept(fed.led, _year_end(fed, prod, 2026, [left, own], 800))
    rejected(fed.led, fed.st, B.issue(prod, fed.serial(), 10, prop.fields[0]), "year-closed")
    rejected(fed.led, fed.st, B.proposal(prod, fed.serial(), 2026, [("40", 1, 1)]), "year-closed")
    # the excess is accounted: giving it to a member now contradicts the year end
    rejected(fed.led, fed.st, B.set_user(prod, left.fields[0], fed.k["ana"]), "already-usable")
    rejected(fed.led, fed.st, B.use(prod, own.fields[0], "40", "40"), "year-closed")
    rejected(fed.led, fed.st, _year_end(fed, prod, 2026, [], 800), "year-closed")
    # another year and another council are open
    accept(fed.led, B.proposal(prod, fed.serial(), 2027, [("40", 1, 1)]))
    fed.plan(k["mill"], 2026, [("40", 1, 1)], approve=False)


def test_year_end_refuses_wrong_unissued_and_foreign_or_spent_tokens(fed):
    k = fed.k
    prod, mill = k["prod"], k["mill"]
    prop = fed.plan(prod, 2026, [("40141600", 10, 1000)])
    mprop = fed.plan(mill, 2026, [("40", 1, 50)])
    spent = fed.token(prod, prop, 100, prod)
    accept(fed.led, B.use(prod, spent.fields[0], "40", "40"))
    salary = fed.token(prod, prop, 100, k["ana"])
    theirs = fed.token(mill, mprop, 50)
    v = rejected(fed.led, fed.st, _year_end(fed, prod, 2026, [], 0), "bad-publication")
    assert v.detail == "unissued credits are 800, not 0"
    rejected(fed.led, fed.st, _year_end(fed, prod, 2026, [spent], 800), "not-excess")
    rejected(fed.led, fed.st, _year_end(fed, prod, 2026, [salary], 800), "not-excess")
    rejected(fed.led, fed.st, _year_end(fed, prod, 2026, [theirs], 800), "not-excess")
    unsorted = B.publication(prod, fed.serial(), "year-end", 2026, {1: [b"\x01" * 8, b"\x00" * 8], 2: 800})
    assert rejected(fed.led, fed.st, unsorted, "bad-publication").detail == "content key 1 has the wrong form"


def test_year_end_in_one_batch_in_any_order_gives_one_state(fed):
    k = fed.k
    prod = k["prod"]
    prop = B.proposal(prod, 90, 2026, [("40", 1, 500)])
    op = B.votation_open(prod, 91, "approve", prop.fields[0], fed.electorate, mid_year(2026) + 30 * 86400)
    votes = [B.vote(s, op.fields[0], "yes") for s in fed.electorate[:3]]
    close = B.votation_close(prod, op, votes, mid_year(2026))
    t = B.issue(prod, 92, 200, prop.fields[0])
    ye = B.publication(prod, 93, "year-end", 2026, {1: [t.fields[0]], 2: 300})
    batch = [ye, t, close, prop, op] + votes
    digests = []
    for order in (batch, list(reversed(batch))):
        f = Fed()
        ov, verdicts = ctb.apply_batch(f.st, order)
        assert all(v.code == ctb.ACCEPTED for v in verdicts), verdicts
        f.st.absorb(ov)
        digests.append([(kk, cbor.dumps(v)) for kk, v in sorted(f.st.kv.items())])
    assert digests[0] == digests[1]


@pytest.mark.micropython
def test_rules_run_under_micropython(mpy):
    out = mpy("""
from pen_protocol import publication as P, ids, membership, yearend
P.check_shape(P.PRICE, ids.pack('40141600'), {1: 150, 2: 'valve'})
try:
    P.check_shape(P.ACCOUNTS, 2026, {1: [[ids.pack('40'), 5]], 2: 6})
except P.PublicationError as e:
    print('refused', e.detail)
held = [[b'\\x02\\x00\\x00\\x00', 1], [b'\\x01\\x00\\x00\\x00', 0]]
held.sort()
print(held[0][1], yearend.excess_account(2026))
""", heap="128k")
    assert out.split("\n")[:2] == ["refused total 6 is not the sum of the accounts (5)", "0 99012026"]


def test_year_end_cannot_take_another_years_token(fed):
    prod = fed.k["prod"]
    p26 = fed.plan(prod, 2026, [("40", 1, 100)])
    p27 = fed.plan(prod, 2027, [("40", 1, 100)])
    t27 = fed.token(prod, p27, 100)
    fed.token(prod, p26, 100)
    v = rejected(fed.led, fed.st, _year_end(fed, prod, 2026, [t27], 0), "not-excess")
    assert "2026 plan" in v.detail


def test_publication_by_a_member_key_is_refused(fed):
    accept(fed.led, B.member(fed.k["cons"], fed.k["ana"], "proposer"))
    rejected(fed.led, fed.st, B.publication(fed.k["ana"], 1, "price", P("50"), {1: 1}), "unknown-council")


def test_any_order_of_an_economy_batch_gives_one_state():
    """Certificates, individual and council proposals, votations, issues and
    a year end, shuffled: every order is accepted and ends in one state."""
    import random
    k = Fed().k
    prod, cons = k["prod"], k["cons"]
    base = Fed()
    prop = B.proposal(prod, 50, 2026, [("40", 1, 500)])
    op = B.votation_open(prod, 51, "approve", prop.fields[0], base.electorate, mid_year(2026) + 30 * 86400)
    votes = [B.vote(s, op.fields[0], "yes") for s in base.electorate[:3]]
    close = B.votation_close(prod, op, votes, mid_year(2026))
    toks = [B.issue(prod, 60 + i, 100, prop.fields[0]) for i in range(3)]
    batch = [prop, op, close, B.member(cons, k["ana"], "proposer"), B.member(k["mill"], k["ana"], "member"),
             B.member(prod, k["ana"], "proposer"), B.proposal(k["ana"], 1, 2026, [("50", 2, 40)]),
             B.set_user(prod, toks[2].fields[0], k["ana"]),  # a salary: not excess, so not listed
             B.publication(prod, 70, "year-end", 2026, {1: sorted(t.fields[0] for t in toks[:2]), 2: 200})]
    batch += votes + toks
    digests = set()
    rnd = random.Random(12)
    for _ in range(12):
        order = batch[:]
        rnd.shuffle(order)
        f = Fed()
        ov, verdicts = ctb.apply_batch(f.st, order)
        assert all(v.code == ctb.ACCEPTED for v in verdicts), [v for v in verdicts if not v.ok]
        f.st.absorb(ov)
        digests.add(tuple((kk, cbor.dumps(v)) for kk, v in sorted(f.st.kv.items())))
    assert len(digests) == 1


def test_proposal_total_beyond_a_cbor_uint_is_refused_not_a_crash(fed):
    """Two lines of 2^64-1 credits made the store fail encoding the state
    (CBORError out of submit) instead of a verdict; individuals can sign
    proposals now, so it matters more."""
    accept(fed.led, B.member(fed.k["cons"], fed.k["ana"], "proposer"))
    big = 2 ** 64 - 1
    v = rejected(fed.led, fed.st, B.proposal(fed.k["ana"], 9, 2026, [("40", 1, big), ("41", 1, big)]), "bad-field")
    assert v.detail == "proposal total exceeds 2^64-1 credits"
    accept(fed.led, B.proposal(fed.k["ana"], 10, 2026, [("40", 1, big)]))


def test_individual_proposal_with_its_councils_admission_in_one_batch():
    """The proposer's council is admitted by a close later in type order:
    not-a-proposer is retried like the other missing dependencies."""
    from pen_protocol import ctb as C
    f = Fed()
    k = f.k
    late = Signer.from_phrase("eco-test/late-village")
    council = B.council(late, "Late Village", "consumption", k["fed"])
    accept(f.led, council, B.member(k["cons"], k["ana"], "member"))  # a member already, not yet a proposer
    # the admit votation names the council by kid, or (ledger branch) by its record id and an attempt
    about = B.membership_about(council) if hasattr(B, "membership_about") else late.kid
    op = B.votation_open(k["fed"], 1, "admit", about, f.electorate, mid_year(2026))
    votes = [B.vote(s, op.fields[0], "yes") for s in f.electorate[:3]]
    batch = [B.proposal(k["ana"], 1, 2026, [("50", 1, 10)]), B.member(late, k["ana"], "proposer"), op] + votes + [
        B.votation_close(k["fed"], op, votes, mid_year(2026))]
    ov, verdicts = C.apply_batch(f.st, batch)
    assert [v.code for v in verdicts] == [C.ACCEPTED] * len(batch), verdicts
