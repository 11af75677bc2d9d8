"""Year end: "Excess tokens at the end of the year would be accounted in
special accounts. In the case when a council runs out of credits before the
year has ended, it would have do a complementary proposal" (the seed).

A council closes its year Y with a PUBLICATION of kind year-end: subject Y,
content {1: the refs of its excess tokens, 2: its unissued credits, 3: 1 when
it is a part and more follow}. Its excess tokens are its NORMAL tokens under
its year-Y proposals that are ISSUED, or USABLE by the council's own key and
unused (tokens whose user is a member, e.g. salaries, are the member's: never
excess). The validator (these functions, called from ctb.Ledger) then
- accounts each listed token into the special account 9901YYYY: the token
  is ACCOUNTED, credited to that account like any use, so the books balance;
  a listed token must be an excess token;
- requires the list to be complete: the state keeps, per council and year,
  the credits of its excess tokens (added at ISSUE, taken off when a
  SET_USER names another key or the council's own key first USEs it), and
  the listed tokens must add up to exactly that ("excess-unlisted"
  otherwise). Token values are positive and the listed ones are excess, so
  equal sums mean the very same set: when a year end is accepted, no token
  of the year is left neither spendable nor accounted. A year end may be
  split in parts (content key 3) when the excess is more than one
  publication's MAX_LIST refs: a part accounts its tokens and leaves the
  year open, the last one closes it;
- requires the unissued credits of its approved year-Y proposals to equal
  what the CTB says (cap minus issued), and records them;
- refuses afterwards, as "year-closed", any further proposal or issue
  under the council's year Y, and any use by the council's own key of a
  year-Y token. (A SET_USER meets a token the year end accounted: the
  council's own key changes nothing, another is "already-usable".)
A year end that arrives before records it depends on (an ISSUE it lists,
the SET_USER or USE that made an unlisted token not excess) is refused with
a reason in ctb.DEPENDENCY and taken when they are there, so every arrival
order ends in one state (tests/economy/test_yearend_order.py). A SET_USER of
a listed token to the council's own key arriving after the year end is what
the year end already did: accepted, no change. What can still depend on
order is the closing council contradicting itself (listing a token and also
signing its USE or its SET_USER to a member), like any signer's
equivocation, so a council closes its year once its devices have
synchronised.

State: b"Y" + kid + year (2 bytes) -> [closed, [proposal refs...] sorted, unissued, excess credits]
"""

from . import ids, records as R

SPECIAL_SEGMENT = "99"  # UNSPSC has no segment 99: Pen's special accounts
EXCESS_FAMILY = "9901"  # excess credits accounted at year end
MAX_CREDITS = 0xFFFFFFFFFFFFFFFF  # a council's proposals of a year: what a year end can state (a CBOR uint)


def excess_account(year):
    return EXCESS_FAMILY + "%04d" % year


def _key(kid, year):
    return b"Y" + kid + year.to_bytes(2, "big")


def _reject(reason, detail=""):
    from .ctb import Reject
    return Reject(reason, detail)


_C = []  # the ctb module, once imported


def _ctb():
    # ctb imports this module at its top: the state accessors are reached
    # at call time, when ctb is whole (MicroPython too); the import statement
    # runs once, not on each of the several calls a record makes
    if not _C:
        from . import ctb
        _C.append(ctb)
    return _C[0]


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


def _year(st, kid, year):
    return st.get(_key(kid, year)) or [False, [], 0, 0]


def check_year_total(st, ref, year, total):
    """A council's proposals of one year together fit a CBOR uint, so its
    unissued credits (what a year end states) always can be stated."""
    planned = total
    for pref in _year(st, R.ref_kid(ref), year)[1]:
        planned += _ctb().proposal_total(st.get(b"P" + pref))
    if planned > MAX_CREDITS:
        raise _reject("bad-field", "the council's proposals for %d would exceed 2^64-1 credits" % year)


def index_proposal(st, ref, year):
    key = _key(R.ref_kid(ref), year)
    y = _year(st, R.ref_kid(ref), year)
    y[1].append(ref)
    y[1].sort()
    st.put(key, y)


def _add_excess(st, kid, year, value):
    key = _key(kid, year)
    y = st.get(key) or [False, [], 0, 0]  # _year; indexed with the council's proposal (a council key is never a member's)
    y[3] += value
    st.put(key, y)


def excess_credits(st, kid, year):
    """The credits of the council's excess tokens of year (still unaccounted)."""
    return _year(st, kid, year)[3]


def on_issue(st, issuer, p, value):
    """A normal token is issued: excess until a user other than the council
    is set or the council uses it."""
    _add_excess(st, issuer, _ctb().proposal_year(p), value)


def on_set_user(st, t, user_key, council_key):
    if user_key == council_key:
        return  # still the council's: still excess
    year = _token_year(st, t)
    if year is not None:
        _add_excess(st, _ctb().token_issuer(t), year, -_ctb().token_value(t))


def on_use(st, t, council_key):
    """Before the USE is appended to t's uses. Only the council's own first
    use of its token changes anything, so other uses read no more state."""
    C = _ctb()
    if C.uses(t) or C.user(t) != council_key:
        return
    year = _token_year(st, t)
    if year is not None:
        _add_excess(st, C.token_issuer(t), year, -C.token_value(t))


def set_user_again(t, user_key):
    """True for a SET_USER naming the key a year end already set: the token
    is accounted as excess (its use and receipt are the year end record, see
    ctb.Ledger.account_excess) and its user is the council's own key."""
    C = _ctb()
    u = C.uses(t)
    return C.user(t) == user_key and len(u) == 1 and C.receipts(t) == [[C.use_id(u[0]), C.use_id(u[0])]]


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


def check_use(st, t, council_key):
    """The council's own unused year-Y credits go to year end, not to a use."""
    C = _ctb()
    if C.user(t) != council_key:
        return  # a member's or another council's token: never held back by year end
    year = _token_year(st, t)
    if year is not None and closed(st, C.token_issuer(t), year):
        raise _reject("year-closed", "the council's own credits of %d are accounted at year end" % year)


def check(st, rec, council):
    """Before a year-end publication is stored (its shape is already
    checked by publication.check_shape)."""
    ref, _, year, content = rec.fields
    kid = R.ref_kid(ref)
    y = _year(st, kid, year)
    if y[0]:
        raise _reject("year-closed", "%s closed %d already" % (kid.hex(), year))
    C = _ctb()
    listed = 0
    for tref in content[1]:
        t = st.get(b"T" + tref)
        if t is None:
            raise _reject("unknown-token", tref.hex())
        if C.token_issuer(t) != kid or C.token_kind(t) != R.NORMAL or _token_year(st, t) != year:
            raise _reject("not-excess", "%s is not a normal token of %s's %d plan" % (tref.hex(), kid.hex(), year))
        if C.uses(t) or (C.user(t) is not None and C.user(t) != council[0]):
            raise _reject("not-excess", "%s is used or belongs to a member" % tref.hex())
        listed += C.token_value(t)
    unissued = 0
    for pref in y[1]:
        p = st.get(b"P" + pref)
        if C.proposal_approved(p):
            unissued += C.proposal_total(p) - C.proposal_issued(p)
    if content[2] != unissued:
        raise _reject("bad-publication", "unissued credits are %d, not %d" % (unissued, content[2]))
    if not content.get(3) and listed != y[3]:
        raise _reject("excess-unlisted", "%s's excess tokens of %d hold %d credits; this year end lists %d" % (
            kid.hex(), year, y[3], listed))


def apply(led, rec, council):
    """After the checks: close the year and account the excess."""
    st = led.state
    ref, _, year, content = rec.fields
    kid = R.ref_kid(ref)
    acct = ids.pack(excess_account(year))
    y = _year(st, kid, year)
    for tref in content[1]:
        y[3] -= _ctb().token_value(st.get(b"T" + tref))  # accounted now: no longer excess
        led.account_excess(tref, council[0], rec.id, acct)
    y[2] = content[2]
    y[0] = not content.get(3)  # a part leaves the year open
    st.put(_key(kid, year), y)
