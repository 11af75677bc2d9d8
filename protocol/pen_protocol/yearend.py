"""Year end: "Excess tokens at the end of the year would be accounted in
special accounts. In the case when a council runs out of credits before the
year has ended, it would have do a complementary proposal" (the seed).

A council closes its year Y with a PUBLICATION of kind year-end: subject Y,
content {1: the refs of its excess tokens, 2: its unissued credits}. The
validator (these functions, called from ctb.Ledger) then
- accounts each listed token into the special account 9901YYYY: the token
  is ACCOUNTED, credited to that account like any use, so the books balance;
  a listed token must be the council's own, NORMAL, under a proposal of
  year Y, and either ISSUED or USABLE by the council's own key and unused
  (tokens whose user is a member, e.g. salaries, are the member's: never
  excess);
- records the unissued credits of its approved year-Y proposals, which must
  equal what the CTB says (cap minus issued);
- refuses afterwards, as "year-closed", any further proposal, issue or
  set-user under the council's year Y, and any use by the council's own key
  of a year-Y token (the excess must go through year end).
All of these are the closing council's own signatures contradicting each
other, so a council closes its year once its devices have synchronised.

State: b"Y" + kid + year (2 bytes) -> [closed, [proposal refs...] sorted, unissued]
"""

from . import ids, records as R

SPECIAL_SEGMENT = "99"  # UNSPSC has no segment 99: Pen's special accounts
EXCESS_FAMILY = "9901"  # excess credits accounted at year end


def excess_account(year):
    return EXCESS_FAMILY + "%04d" % year


def _key(kid, year):
    return b"Y" + kid + year.to_bytes(2, "big")


def _reject(reason, detail=""):
    from .ctb import Reject
    return Reject(reason, detail)


def _ctb():
    # ctb imports this module at its top: the state accessors are reached
    # at call time, when ctb is whole (MicroPython too)
    from . import ctb
    return ctb


def closed(st, kid, year):
    y = st.get(_key(kid, year))
    return bool(y) and y[0]


def on_proposal(st, ref, year, is_council):
    """Before a proposal is stored: refused for a closed year; a council's
    proposals are indexed so year end can find them."""
    kid = R.ref_kid(ref)
    if not 1900 <= year <= 9999:
        raise _reject("bad-field", "proposal.year must be a year")
    if closed(st, kid, year):
        raise _reject("year-closed", "%s closed %d" % (kid.hex(), year))
    return is_council


def index_proposal(st, ref, year):
    key = _key(R.ref_kid(ref), year)
    y = st.get(key) or [False, [], 0]
    y[1].append(ref)
    y[1].sort()
    st.put(key, y)


def check_issue(st, issuer, p):
    """A normal issue under proposal state p (a b"P" value)."""
    year = _ctb().proposal_year(p)
    if closed(st, issuer, year):
        raise _reject("year-closed", "%s closed %d: excess is accounted, no more issues" % (issuer.hex(), year))


def _token_year(st, t):
    C = _ctb()
    if C.token_kind(t) != R.NORMAL:
        return None
    p = st.get(b"P" + C.token_authority(t))
    return C.proposal_year(p) if p else None


def check_set_user(st, t):
    year = _token_year(st, t)
    if year is not None and closed(st, _ctb().token_issuer(t), year):
        raise _reject("year-closed", "token of a closed year (%d)" % year)


def check_use(st, t, council_key):
    """The council's own unused year-Y credits go to year end, not to a use."""
    C = _ctb()
    year = _token_year(st, t)
    if year is not None and C.user(t) == council_key and closed(st, C.token_issuer(t), year):
        raise _reject("year-closed", "the council's own credits of %d are accounted at year end" % year)


def check(st, rec, council):
    """Before a year-end publication is stored (its shape is already
    checked by publication.check_shape)."""
    ref, _, year, content = rec.fields
    kid = R.ref_kid(ref)
    y = st.get(_key(kid, year))
    if y is not None and y[0]:
        raise _reject("year-closed", "%s closed %d already" % (kid.hex(), year))
    C = _ctb()
    unissued = 0
    for pref in (y[1] if y else []):
        p = st.get(b"P" + pref)
        if C.proposal_approved(p):
            unissued += C.proposal_total(p) - C.proposal_issued(p)
    if content[2] != unissued:
        raise _reject("bad-publication", "unissued credits are %d, not %d" % (unissued, content[2]))
    for tref in content[1]:
        t = st.get(b"T" + tref)
        if t is None:
            raise _reject("unknown-token", tref.hex())
        if C.token_issuer(t) != kid or C.token_kind(t) != R.NORMAL or _token_year(st, t) != year:
            raise _reject("not-excess", "%s is not a normal token of %s's %d plan" % (tref.hex(), kid.hex(), year))
        if C.uses(t) or (C.user(t) is not None and C.user(t) != council[0]):
            raise _reject("not-excess", "%s is used or belongs to a member" % tref.hex())


def apply(led, rec, council):
    """After the checks: close the year and account the excess."""
    st = led.state
    ref, _, year, content = rec.fields
    key = _key(R.ref_kid(ref), year)
    y = st.get(key) or [False, [], 0]
    y[0] = True
    y[2] = content[2]
    st.put(key, y)
    acct = ids.pack(excess_account(year))
    for tref in content[1]:
        led.account_excess(tref, council[0], rec.id, acct)
