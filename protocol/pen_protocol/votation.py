"""Recompute a votation from its records alone.

A votation's evidence is a chain of records: the opening (owner, subject,
electorate snapshot, deadline), one signed vote per council, and the close,
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
        self.tally = None  # (yes, no, abstain) recomputed from the counted votes
        self.closed = None  # (yes, no, abstain, passed) as the close states it
        self.passed = None
        self.void = []  # kids whose double vote voided their vote
        self.problems = []  # (record name, reason, detail)
        self.notes = []

    @property
    def ok(self):
        return not self.problems and self.closed is not None


def verify(raws):
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
    # the electorate's councils are trusted as members for this replay: the
    # file carries their keys; whether they were admitted is the CTB's matter
    for kid in electorate:
        c = st.get(b"C" + kid)
        if c is None:
            rep.problems.append(("council", "missing-council", "no council record for elector " + kid.hex()))
            return rep
        c[4] = ctb.ADMITTED
        st.put(b"C" + kid, c)
    apply((R.PROPOSAL, R.VOTATION_OPEN, R.VOTE, R.VOTATION_CLOSE, R.CONFLICT))
    state = st.get(b"V" + ref)
    if state is None:
        return rep
    tally = [0, 0, 0]
    for idx in state[5]:
        tally[state[5][idx][0]] += 1
    rep.tally = (tally[R.YES], tally[R.NO], tally[R.ABSTAIN])
    rep.void = [electorate[i] for i in state[6]]
    if state[7] is not None:
        yes, no, abstain, passed = state[7][:4]
        rep.closed = (yes, no, abstain, passed)
        rep.passed = passed
        if rep.tally != (yes, no, abstain):
            rep.notes.append("votes counted at close %d/%d/%d; votes present now %d/%d/%d (late votes are kept, "
                             "not counted)" % (yes, no, abstain, rep.tally[0], rep.tally[1], rep.tally[2]))
    else:
        rep.notes.append("votation not closed")
    return rep
