"""Recompute a votation from its records alone.

A votation's evidence is a chain of records: the opening (owner, subject,
electorate of its membership epoch, deadline), signed votes (per council the
lowest record id counts), and the close,
which names the opening by hash and every counted vote by hash. Given those
records and the electorate's council records (their keys), anyone can replay
them through the one validator and get the tally, without trusting the CTB
they came from.
"""

from . import ctb, records as R


class Report:
    def __init__(self):
        self.votation = None
        self.subject = None
        self.electorate = []
        self.epoch = None
        self.tally = None  # (yes, no, abstain) recomputed from the counted votes
        self.closed = None  # (yes, no, abstain, passed) as the close states it
        self.passed = None
        self.double = []  # kids that voted twice: their lowest-id vote counts, the rest is evidence
        self.problems = []  # (record name, reason, detail)
        self.notes = []

    @property
    def ok(self):
        return not self.problems and self.closed is not None


def verify(raws, ctb_state=None):
    """Replay a votation's records. With ctb_state (a CTB's State), also
    check that the electorate is that CTB's councils of the pinned epoch: the
    records alone cannot show who the councils were."""
    rep = Report()
    recs = []
    for raw in raws:
        try:
            recs.append(R.parse(raw))
        except R.RecordError as e:
            rep.problems.append(("record", e.reason, e.detail))
    opens = [r for r in recs if r.type == R.VOTATION_OPEN]
    if len(opens) != 1:
        rep.problems.append(("votation-open", "need-one-opening", "found %d" % len(opens)))
        return rep
    op = opens[0]
    ref, subject, about, electorate = op.fields[0], op.fields[1], op.fields[2], op.fields[3]
    rep.votation, rep.subject, rep.electorate = ref, R.SUBJECTS[subject], electorate
    rep.epoch = op.fields[5]
    if ctb_state is not None:
        real = ctb.electorate_of(ctb_state, rep.epoch)
        if real is None:
            rep.notes.append("this CTB has no membership epoch %d: electorate not checked" % rep.epoch)
        elif real != electorate:
            rep.problems.append(("votation-open", "bad-electorate",
                                 "the electorate must be exactly the councils of epoch %d" % rep.epoch))
    st = ctb.MemoryState()

    def apply(kinds):
        batch = [r for r in recs if r.type in kinds]
        ov, verdicts = ctb.apply_batch(st, batch)
        for r, v in zip(batch, verdicts):
            if v.code == ctb.REJECTED:
                rep.problems.append((r.name, v.reason, v.detail))
            elif v.code == ctb.CONFLICT:
                rep.notes.append("%s: %s (%s)" % (r.name, v.reason, v.detail))
        st.absorb(ov)

    apply((R.COUNCIL,))
    # the electorate's councils are trusted as the councils of the pinned
    # epoch for this replay (the file carries their keys; that they were the
    # epoch's councils is the CTB's matter, which its open checked), and the
    # owner as the economy's federation
    for kid in electorate:
        if st.get(b"C" + kid) is None:
            rep.problems.append(("council", "missing-council", "no council record for elector " + kid.hex()))
            return rep
    attempt = about[1] if subject in (R.ADMIT, R.DISMEMBER) and isinstance(about, list) and len(about) == 2 \
        and R._uint(about[1]) else 0
    ctb.Ledger(st).trust_electorate(op.fields[5], electorate, R.ref_kid(ref), min(attempt, R.MAX_LIST))
    apply((R.PROPOSAL, R.VOTATION_OPEN, R.VOTE, R.VOTATION_CLOSE, R.CONFLICT))
    state = st.get(b"V" + ref)
    if state is None:
        return rep
    tally = [0, 0, 0]
    for choice, _ in ctb.counted_votes(state).values():
        tally[choice] += 1
    rep.tally = (tally[R.YES], tally[R.NO], tally[R.ABSTAIN])
    rep.double = ctb.double_voters(state)
    result = ctb.votation_result(state)
    if result is not None:
        yes, no, abstain, passed = result[:4]
        rep.closed = (yes, no, abstain, passed)
        rep.passed = passed
        if rep.tally != (yes, no, abstain):
            rep.notes.append("votes counted at close %d/%d/%d; votes present now %d/%d/%d (late votes are kept, "
                             "not counted)" % (yes, no, abstain, rep.tally[0], rep.tally[1], rep.tally[2]))
    else:
        rep.notes.append("votation not closed")
    return rep
