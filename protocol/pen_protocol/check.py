"""Offline token check, per the seed's "Using": from a CTB copy (possibly
old), the village spent set, and the token chain the payer presents, answer
valid / invalid (reason) / indeterminable (reason).

The presented records go through the one validator (ctb.Ledger) on top of the
local copy, in a throw-away overlay: nothing is stored. A rejection that only
means "this copy is too old to know" makes the answer indeterminable; any
other rejection makes it invalid.
"""

from . import ctb, records as R

VALID = "valid"
INVALID = "invalid"
INDETERMINABLE = "indeterminable"

class Answer:
    __slots__ = ("verdict", "reason", "detail", "token", "state", "evidence")

    def __init__(self, verdict, reason, detail="", token=None, state=None, evidence=None):
        self.verdict = verdict
        self.reason = reason
        self.detail = detail
        self.token = token
        self.state = state
        self.evidence = evidence

    def __repr__(self):
        return "Answer(%s %s %s)" % (self.verdict, self.reason, self.detail)


def check_token(copy, token_ref, chain=(), live=False, spent=None):
    """copy: the local CTB state (get/get_record). token_ref: 8-byte ref.
    chain: records the payer presents (ISSUE, SET_USER, and the USE being
    made, any subset). live: True when copy is the CTB itself (online).
    spent: container of token refs the village node has heard spent, or None.
    A village node cannot verify a user's signature and any holder of the
    village key can seal a frame, so its word is "cannot know yet", never
    proof: INVALID spent-in-village only comes from verified records (the
    payer's chain or the copy), here it is INDETERMINABLE (issue 10, item 9)."""
    ov = ctb.Overlay(copy)
    led = ctb.Ledger(ov)
    recs = []
    for raw in chain:
        try:
            rec = R.parse(raw)
        except R.RecordError as e:
            return Answer(INVALID, "malformed", e.reason, token_ref)
        if rec.token_ref != token_ref:
            return Answer(INVALID, "wrong-token", "a presented record is for another token", token_ref)
        recs.append(rec)
    recs.sort(key=lambda r: r.type)
    missing = None
    for rec in recs:
        v = led.submit(rec)
        if v.code == ctb.REJECTED:
            if v.reason in ctb.DEPENDENCY:  # the copy lacks something newer
                missing = missing or (v.reason, v.detail)
                continue
            return Answer(INVALID, v.reason, v.detail, token_ref)
        if v.code == ctb.CONFLICT:
            return Answer(INVALID, "already-spent", "a different use of this token exists", token_ref,
                          ctb.USED, v.evidence)
    t = ov.get(b"T" + token_ref)
    state = ctb.token_state(t)
    if t is None:
        reason = missing or ("unknown-token", "")
        return Answer(INDETERMINABLE, "not-in-copy", "token not in this CTB copy (%s)" % reason[0], token_ref)
    if state == ctb.ISSUED:
        return Answer(INDETERMINABLE if missing else INVALID, "not-usable",
                      "the issuer has not named a user", token_ref, state)
    prior = copy.get(b"T" + token_ref)
    if prior is not None and ctb.uses(prior):
        ours = [r.id for r in recs if r.type == R.USE]
        if not (ours and ctb.use_id(ctb.effective_use(prior)) == ours[0]):
            return Answer(INVALID, "already-spent", "the CTB copy has this token %s" % ctb.token_state(prior),
                          token_ref, ctb.token_state(prior))
    if spent is not None and token_ref in spent:
        return Answer(INDETERMINABLE, "spent-in-village",
                      "the village node has heard it spent (unverified: cannot know yet)", token_ref, state)
    if missing:
        return Answer(INDETERMINABLE, missing[0], missing[1], token_ref, state)
    if live:
        return Answer(VALID, "unspent", "the CTB has it " + state, token_ref, state)
    return Answer(INDETERMINABLE, "copy-may-be-old",
                  "signatures check and this copy has it unspent; it may have been spent since the copy was made",
                  token_ref, state)
