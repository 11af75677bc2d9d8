"""`pen votation verify`: the tally follows from the records alone, and any
tampering shows."""
from pen import build as B
from pen.keys import Signer
from pen.samples import economy
from pen_protocol import records as R, votation as VT


def chain():
    k, ordered, n = economy()
    councils = [r for r in ordered if r.type == R.COUNCIL]
    votes = [r for r in ordered if r.type == R.VOTE]
    return k, n, councils + [n["proposal"], n["votation-open"]] + votes + [n["votation-close"]]


def test_tally_recomputed_from_records():
    k, n, recs = chain()
    rep = VT.verify([r.raw for r in recs])
    assert rep.ok, rep.problems
    assert rep.tally == (3, 0, 0) and rep.closed == (3, 0, 0, True) and rep.passed


def test_any_order_verifies_the_same():
    k, n, recs = chain()
    rep = VT.verify([r.raw for r in reversed(recs)])
    assert rep.ok and rep.tally == (3, 0, 0)


def test_forged_vote_shows():
    k, n, recs = chain()
    raws = [r.raw for r in recs]
    i = next(i for i, r in enumerate(recs) if r.type == R.VOTE)
    bad = bytearray(raws[i])
    bad[-1] ^= 1
    raws[i] = bytes(bad)
    rep = VT.verify(raws)
    assert not rep.ok
    assert ("vote", "duplicate", "") not in rep.problems
    assert any(p[1] in ("bad-signature", "unknown-vote") for p in rep.problems)


def test_close_without_its_votes_fails():
    k, n, recs = chain()
    rep = VT.verify([r.raw for r in recs if r.type != R.VOTE])
    assert not rep.ok and any(p[1] == "unknown-vote" for p in rep.problems)


def test_double_vote_is_noted_and_only_the_lowest_id_counts():
    k, n, recs = chain()
    extra = B.vote(k["village-store"], n["votation-open"].fields[0], "no")
    extra2 = B.vote(k["village-store"], n["votation-open"].fields[0], "yes")
    rep = VT.verify([r.raw for r in recs] + [extra.raw, extra2.raw])
    assert rep.ok
    assert rep.double == [k["village-store"].kid]
    assert any("double-vote" in x for x in rep.notes)
    low = min((extra, extra2), key=lambda r: r.id)
    # late votes (after the close) are kept, not counted by the close; the
    # live tally counts the store once, with its lowest-id vote
    assert rep.tally == (3 + (low.fields[2] == 1), low.fields[2] == 0, 0)


def test_missing_elector_council_is_a_problem():
    k, n, recs = chain()
    rep = VT.verify([r.raw for r in recs if r.type != R.COUNCIL])
    assert not rep.ok and rep.problems[0][1] == "missing-council"


def test_a_second_admit_attempt_verifies_from_its_own_records():
    """The first attempt failed; the file holds the second attempt's
    records only, and the replay takes the earlier slot as closed."""
    from pen.samples import T0
    k, ordered, n = economy()
    fed, fp, vc = k["valley-federation"], k["formosa-plumbing"], k["village-consumers"]
    newcomer = Signer.from_phrase("newcomer")
    cand = B.council(newcomer, "Newcomer", "production", fed)
    electorate = [k[x] for x in ("valley-federation", "formosa-plumbing", "village-consumers", "supply-hub",
                                 "village-store")]
    op = B.votation_open(fed, 9, "admit", B.membership_about(cand, 1), electorate, T0 + 86400)
    votes = [B.vote(s, op.fields[0], "yes") for s in (fed, fp, vc)]
    councils = [r for r in ordered if r.type == R.COUNCIL]
    chain = councils + [cand, op] + votes + [B.votation_close(fed, op, votes, T0 + 3600)]
    rep = VT.verify([r.raw for r in chain])
    assert rep.ok, rep.problems
    assert rep.passed and rep.tally == (3, 0, 0)
