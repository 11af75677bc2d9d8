"""The one validator of Credit Token Blockchain and votation transitions.

Everything that decides whether a record may enter a CTB lives here: the token
state machine of the seed's "Participatory Credits" table, minting by Proof of
Majority, exchange (change) tokens, council votations and membership, and what
happens when one signer signs two records that cannot both hold. Storage
(SQLite, PostgreSQL, a dict in tests or on a board) only supplies a State; the
rules never know which. Other modules read state through the accessors below
(effective_use, user, is_accounted, ...), never by index.

    ISSUED --SET_USER (issuer)--> USABLE --USE (user)--> USED --ACCOUNTED (CTB node)--> ACCOUNTED

The seed's rules, as enforced here (docs/protocol.md, "The CTB rules"):
- Membership is a chain of epochs. Genesis, signed by every founder, makes
  epoch 0 (its founders). A passed ADMIT or DISMEMBER votation pinned to epoch
  e makes epoch e+1. Only the economy's federation (the first founder: "the
  council where it seeks membership") holds them, one at a time: the attempt
  a at epoch e needs attempt a-1 closed without passing, so one epoch never has
  two successors. ADMIT and DISMEMBER name the council by its COUNCIL record id
  (its full key), so a squatted 4-byte key id gains nothing.
- Every votation pins an epoch and its electorate must be exactly that epoch's
  councils: "a majority of the councils" is the real councils, not the
  opener's list.
- One vote per council counts: the lowest record id among its votes; the
  others are kept as evidence. A close counts, per council, the lowest id
  among the votes it lists, so a close is valid or not by itself.
- An ACCOUNTED use is final: the effective use of a token is its accounted use
  (the lowest use id among accounted ones when two CTB nodes accounted
  concurrently), else its lowest-id use. A later or ground USE is evidence
  against its signer and moves no credit once the token is accounted. Only
  keys certified with the role "node", by the economy's federation ("the
  common" of the seed's table), sign ACCOUNTED.
- Change is covered per exchange account: the change released against an
  account, by every allowance naming it together, never exceeds the normal
  credits used into it (each token counted once, never taken back, so a
  release valid once stays valid); an account becomes a shop's exchange
  account only by a votation a majority passed.
- An APPROVE votation's deadline and close fall in its proposal's year; no
  clock is read: the years come from the records' own times.

Derived state is a function of the set of accepted records, not of their
arrival order, so peers that hold the same records hold the same state
(tests/ctb/test_properties.py replays accepted sets shuffled). Every rule
above depends only on records being present, never on one being absent; the
exception is a signer's own equivocation (two records for one ref), listed
under "Known limits" in docs/protocol.md.
Records are applied in type order (records.py numbers types in dependency
order), which sync and batch import do.

State keys (bytes) and values (CBOR-able lists):
  b"G"          [name, founders, genesis id]
  b"M"          [current membership epoch]
  b"E"+epoch4   [councils of that epoch (ascending kids), id of the record that made it]
  b"S"+epoch4+attempt4   ref of the membership votation holding that slot
  b"C"+kid      council [key, name, kind, parent, status]
  b"K"+kid      member key [key, council kid, role] (its smallest membership; all in b"R", membership.py)
  b"V"+ref      votation [open id, subject, about, electorate, deadline, votes{index: [choice, vote id]},
                          doubled [index...], closed None | [yes, no, abstain, passed, close id], epoch]
  b"P"+ref      proposal [total credits, approved, issued, year]
  b"X"+ref      exchange allowance (keyed by its votation) [shop kid, amount, account, issued, released]
  b"O"+account  exchange account [shops whose passed allowances name it (ascending kids), change released
                against it by all of them]
  b"T"+ref      token [issuer kid, value, kind, authority, user key | None, uses [[use id, product, account]...],
                       accounted [[receipt id, use id]...]]
  b"A"+account  credits received by an account (product id bytes); this and the other sums of token
                values (b"N", b"Q", an account's released change) are read with amount(): past 2^64-1
                they are stored as 64-bit limbs
  b"N"+account  the cover for change: the value of every normal (not change) token with a USE into the
                account, each token once; it only grows (a double spend that moves a use away leaves it,
                with the evidence against the payer), so a release valid once stays valid
  b"Q"+product  credits spent on a product
  b"U"+ref      publication [kind, subject, content, id] (content checked by publication.py)
  b"R"+kid      every [council, role] of a key holding several memberships (membership.py)
  b"Y"+kid+year [closed, proposal refs, unissued, excess credits] a council's plan year (yearend.py)
A put of None deletes the key: a value that returns to nothing leaves no
trace, so the state does not depend on the order that led there.
"""

from . import records as R
from .records import RecordError
from . import sign
from . import membership, publication, yearend

# The rules' version: raise it whenever the state a record set derives changes
# (a new rule, a new state layout). A host CTB written under other rules
# derives its state again from its records (pen.store.SQLStore.rebuild_state).
RULES_VERSION = 1

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
CONFLICT = "conflict"  # stored as evidence; does not count
REJECTED = "rejected"

# council status
REGISTERED = 0
ADMITTED = 1
DISMEMBERED = 2

ISSUED = "ISSUED"
USABLE = "USABLE"
USED = "USED"
ACCOUNTED = "ACCOUNTED"


class Verdict:
    __slots__ = ("code", "reason", "detail", "record", "evidence")

    def __init__(self, code, reason="", detail="", record=None, evidence=None):
        self.code = code
        self.reason = reason
        self.detail = detail
        self.record = record
        self.evidence = evidence  # a CONFLICT Record when one was made

    @property
    def ok(self):
        return self.code != REJECTED

    def __repr__(self):
        return "Verdict(%s %s %s)" % (self.code, self.reason, self.detail)


class Reject(Exception):
    def __init__(self, reason, detail=""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class MemoryState:
    """State in a dict: tests, MicroPython, and the overlay base in memory."""

    def __init__(self):
        self.kv = {}
        self.recs = {}

    def get(self, key):
        return self.kv.get(key)

    def put(self, key, value):
        if value is None:
            self.kv.pop(key, None)
        else:
            self.kv[key] = value

    def get_record(self, rid):
        return self.recs.get(rid)

    def add_record(self, rec):
        self.recs[rec.id] = rec.raw

    def absorb(self, overlay):
        """Commit a batch validated over this state (see apply_batch)."""
        for k in overlay.kv:
            self.put(k, overlay.kv[k])
        for rec in overlay.added:
            self.recs[rec.id] = rec.raw


def _copy(v):
    if isinstance(v, list):
        # the leaves of state values (bytes, ints, None) are shared, not
        # copied: a call less for each (this runs for every value a batch reads)
        return [x if type(x) is bytes or type(x) is int or x is None else _copy(x) for x in v]
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    return v


_ABSENT = object()  # Overlay.get's "not there" (None is a value: a deleted key)


class Overlay:
    """Buffers one batch's changes over a base state, so a batch is applied
    whole or not at all: storage writes .kv and .added in one transaction."""

    def __init__(self, base):
        self.base = base
        self.kv = {}
        self.added = []  # Records in acceptance order
        self._recs = {}
        # every key read or written so far -> its value in the batch (what
        # kv holds for a written key): one lookup answers a get
        self._seen = {}

    def get(self, key):
        v = self._seen.get(key, _ABSENT)
        if v is _ABSENT:
            # a private copy: rules mutate what they read, and the base
            # must not change before the batch commits
            v = self._seen[key] = _copy(self.base.get(key))
        return v

    def put(self, key, value):
        self.kv[key] = value
        self._seen[key] = value

    def get_record(self, rid):
        raw = self._recs.get(rid)
        return raw if raw is not None else self.base.get_record(rid)

    def add_record(self, rec):
        self._recs[rec.id] = rec.raw
        self.added.append(rec)


# -- accessors: the only code that knows the positions in state values -------

def token_issuer(t):
    return t[0]


def token_value(t):
    return t[1]


def token_kind(t):
    return t[2]


def token_authority(t):
    return t[3]


def user(t):
    """The user's public key, or None while the token is only ISSUED."""
    return t[4]


def uses(t):
    """Every USE of the token as [use id, product, account], ascending by id."""
    return t[5]


def receipts(t):
    """Every ACCOUNTED receipt of the token as [receipt id, use id], ascending."""
    return t[6]


def accounted_use_ids(t):
    return [a[1] for a in t[6]]


def effective_use(t):
    """The use that counts: the accounted one (the lowest use id among
    accounted ones), else the lowest-id use; None when unused."""
    if not t[5]:
        return None
    done = accounted_use_ids(t)
    for u in t[5]:
        if u[0] in done:
            return u
    return t[5][0]


def is_accounted(t):
    return bool(t[6])


def use_id(u):
    return u[0]


def use_product(u):
    return u[1]


def use_account(u):
    return u[2]


def token_state(t):
    """The seed's state name of a token value from the state."""
    if t is None:
        return None
    if t[4] is None:
        return ISSUED
    if not t[5]:
        return USABLE
    return ACCOUNTED if t[6] else USED


def economy_name(state):
    """The name the genesis gave the economy, or None before genesis."""
    g = state.get(b"G")
    return g[0] if g else None


def council_key(state, kid):
    c = state.get(b"C" + kid)
    return c[0] if c else None


def council_status(c):
    return c[4]


def council_name(c):
    return c[1]


def council_kind(c):
    return c[2]


def council_parent(c):
    return c[3]


def proposal_total(p):
    return p[0]


def proposal_approved(p):
    return p[1]


def proposal_issued(p):
    return p[2]


def proposal_year(p):
    return p[3]


def allowance_shop(x):
    return x[0]


def allowance_amount(x):
    return x[1]


def allowance_account(x):
    return x[2]


def allowance_issued(x):
    return x[3]


def allowance_released(x):
    return x[4]


def account_shops(o):
    """Of a b"O" value: the shops whose passed allowances name the account
    (more than one only if a majority approved each)."""
    return o[0]


def account_released(o):
    """Of a b"O" value: change released against the account, all allowances."""
    return amount(o[1])


def publication_kind(u):
    """Of a b"U" value: the kind (records.PUB_KINDS index)."""
    return u[0]


def publication_subject(u):
    return u[1]


def publication_content(u):
    """The content map, checked per kind by publication.py."""
    return u[2]


def publication_id(u):
    """The id of the PUBLICATION record."""
    return u[3]


_U64 = 0xFFFFFFFFFFFFFFFF


def amount(v):
    """A sum of token values from the state (b"A", b"Q", b"N", an exchange
    account's released change): 0 when absent. Each token carries at most
    2^64-1 credits but nothing bounds how many add up in one account, and
    a bound on the sum would refuse one record or another depending on
    which arrived first. So a sum past 2^64-1 (the largest CBOR uint) is
    stored as its 64-bit limbs, most significant first; below it, as the
    plain integer it always was."""
    if v is None:
        return 0
    if isinstance(v, int):
        return v
    n = 0
    for limb in v:
        n = (n << 64) | limb
    return n


def _stored(n):
    """The state form of the sum n (see amount)."""
    if n <= _U64:
        return n
    limbs = []
    while n:
        limbs.insert(0, n & _U64)
        n >>= 64
    return limbs


def is_admitted(state, kid):
    c = state.get(b"C" + kid)
    return bool(c) and c[4] == ADMITTED


def votation_subject(v):
    return v[1]


def votation_about(v):
    return v[2]


def votation_electorate(v):
    return v[3]


def votation_deadline(v):
    return v[4]


def votation_open_id(v):
    return v[0]


def votation_epoch(v):
    return v[8]


def counted_votes(v):
    """{elector kid: [choice, vote id]}: each council's lowest-id vote."""
    return {v[3][i]: v[5][i] for i in v[5]}


def double_voters(v):
    """Kids of the councils that voted more than once (evidence kept)."""
    return [v[3][i] for i in v[6]]


def votation_result(v):
    """None while open, else [yes, no, abstain, passed, close id]."""
    return v[7]


def votation_passed(v):
    """True once closed with a majority of its electorate."""
    return bool(v[7]) and v[7][3]


def votation_close_id(v):
    """The id of the VOTATION_CLOSE record, None while open."""
    return v[7][4] if v[7] else None


def epoch(state):
    """The current membership epoch (None before genesis)."""
    m = state.get(b"M")
    return m[0] if m else None


def _ekey(e):
    return b"E" + e.to_bytes(4, "big")


def electorate_of(state, e):
    """The councils of membership epoch e (ascending kids), or None."""
    s = state.get(_ekey(e))
    return s[0] if s else None


def _slot_key(e, attempt):
    return b"S" + e.to_bytes(4, "big") + attempt.to_bytes(4, "big")


def year_of(t):
    """The UTC calendar year of unix time t (seconds), in integers only
    (H. Hinnant's civil_from_days), so MicroPython needs no time module."""
    z = t // 86400 + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    return yoe + era * 400 + (1 if mp >= 10 else 0)


def _admitted(state, kid, who):
    """A council that is, or was, a member (genesis or a passed ADMIT). A
    dismembered council leaves the electorate of later epochs, but what it
    signs outside votations stays valid: "was it dismembered before it signed
    this?" needs a clock the validator does not read, and answering by arrival
    order would leave peers that learnt the two in different orders
    disagreeing for good."""
    c = state.get(b"C" + kid)
    if c is None:
        raise Reject("unknown-council", who + " " + kid.hex())
    if c[4] == REGISTERED:
        raise Reject("council-not-admitted", who + " " + kid.hex())
    return c


def _convener(state):
    g = state.get(b"G")
    if g is None:
        raise Reject("no-genesis", "the economy is not founded yet")
    return g[1][0]


class Ledger:
    """Validates and applies records against a State (get/put/get_record/add_record).
    verify(public_key, message, signature) -> bool checks signatures
    (default sign.verify); a host may pass one that defers the check, see
    apply_batch."""

    def __init__(self, state, verify=None):
        self.state = state
        self.sig_ok = verify if verify is not None else sign.verify

    def _verify(self, rec, pk, who):
        if pk is None:
            raise Reject("unknown-signer", "no key for " + who)
        if not self.sig_ok(pk, rec.signed_message(), rec.sig):
            raise Reject("bad-signature", "not signed by " + who)

    def submit(self, raw):
        """Parse, validate and apply one record. Never raises for bad input:
        the Verdict says what happened. A rejected record changes nothing."""
        try:
            rec = raw if isinstance(raw, R.Record) else R.parse(raw)
        except RecordError as e:
            return Verdict(REJECTED, e.reason, e.detail)
        if self.state.get_record(rec.id) is not None:
            return Verdict(DUPLICATE, "duplicate", "", rec)
        # Validation writes nothing until it has passed: every rule below
        # raises Reject before its first put.
        try:
            result = _RULES[rec.type](self, rec)
        except Reject as e:
            return Verdict(REJECTED, e.reason, e.detail, rec)
        self.state.add_record(rec)
        if result is None:
            return Verdict(ACCEPTED, "", "", rec)
        reason, evidence = result
        if evidence is not None and self.state.get_record(evidence.id) is None:
            self.state.add_record(evidence)
        return Verdict(CONFLICT, reason, "kept as evidence; not counted", rec, evidence)

    def trust_electorate(self, e, kids, convener, failed_attempts=0):
        """For a replay from records alone (votation.verify): take kids as
        the councils of epoch e, convener as the economy's federation and the
        first failed_attempts membership slots of epoch e as closed without
        passing (their records are not in the file). Never called on a CTB."""
        st = self.state
        for a in range(failed_attempts):
            ref = bytes(4) + a.to_bytes(4, "big")  # a placeholder no record can have: kid 0
            st.put(_slot_key(e, a), ref)
            st.put(b"V" + ref, [None, R.ADMIT, None, sorted(kids), 0, {}, [], [0, 0, 0, False, None], e])
        kids = sorted(kids)
        for kid in kids:
            c = st.get(b"C" + kid)
            if c is not None:
                st.put(b"C" + kid, c[:4] + [ADMITTED])
        st.put(_ekey(e), [kids, None])
        st.put(b"M", [e])
        st.put(b"G", ["(replay)", [convener], None])

    # -- councils -------------------------------------------------------

    def _genesis(self, rec):
        st = self.state
        if st.get(b"G") is not None:
            raise Reject("genesis-exists")
        name, founders, time, consents = rec.fields
        keys = []
        for kid in founders:
            pk = council_key(st, kid)
            if pk is None:
                raise Reject("unknown-council", "founder " + kid.hex())
            keys.append(pk)
        if len(consents) != len(founders):
            raise Reject("missing-consent", "%d founders, %d consents" % (len(founders), len(consents)))
        msg = R.genesis_consent(name, founders, time)
        for i in range(len(founders)):
            if not self.sig_ok(keys[i], msg, consents[i]):
                raise Reject("missing-consent", "founder %s did not sign" % founders[i].hex())
        self._verify(rec, keys[0], "the first founder")
        for kid in founders:
            c = st.get(b"C" + kid)
            st.put(b"C" + kid, c[:4] + [ADMITTED])
        st.put(b"G", [name, founders, rec.id])
        st.put(_ekey(0), [sorted(founders), rec.id])
        st.put(b"M", [0])

    def _council(self, rec):
        st = self.state
        pk, name, kind, parent = rec.fields
        kid = sign.kid(pk)
        if st.get(b"C" + kid) is not None or st.get(b"K" + kid) is not None:
            raise Reject("key-exists", "key id " + kid.hex() + " is taken")
        if parent is not None:
            p = st.get(b"C" + parent)
            if p is None or p[2] != R.FEDERATION:
                raise Reject("bad-parent", "parent must be a known federation")
        self._verify(rec, pk, "the council's own key")
        st.put(b"C" + kid, [pk, name, kind, parent, REGISTERED])

    def _member(self, rec):
        st = self.state
        council, pk, role = rec.fields
        c = _admitted(st, council, "certifying council")
        if role == R.ROLE_NODE and council != _convener(st):
            # ACCOUNTED is final and its delegate is "the common": a council
            # that could certify its own node could finalise its accomplice's
            # ground USE before the shop's
            raise Reject("not-the-federation", "only the economy's federation certifies CTB node keys")
        kid = sign.kid(pk)
        if st.get(b"C" + kid) is not None:
            raise Reject("key-exists", "key id " + kid.hex() + " is taken")
        more = membership.check_new(st, kid, pk, council, role)  # one key, several memberships
        self._verify(rec, c[0], "the certifying council")
        if more:
            membership.add(st, kid, pk, council, role)
        else:
            st.put(b"K" + kid, [pk, council, role])

    # -- votations ------------------------------------------------------

    def _open(self, rec):
        st = self.state
        ref, subject, about, electorate, deadline, e = rec.fields
        owner = R.ref_kid(ref)
        snapshot = electorate_of(st, e)
        if snapshot is None:
            raise Reject("unknown-epoch", "membership epoch %d" % e)
        if st.get(b"V" + ref) is not None:
            raise Reject("votation-exists")
        if electorate != snapshot:
            raise Reject("bad-electorate", "the electorate must be exactly the councils of epoch %d" % e)
        if owner not in snapshot:
            raise Reject("not-in-electorate", "owner %s is not a council of epoch %d" % (owner.hex(), e))
        slot = self._check_subject(owner, subject, about, deadline, e)
        self._verify(rec, council_key(st, owner), "the owning council")
        if slot is not None:
            st.put(slot, ref)
        st.put(b"V" + ref, [rec.id, subject, about, electorate, deadline, {}, [], None, e])

    def _check_subject(self, owner, subject, about, deadline, e):
        """Raises Reject unless about fits the subject; returns the
        membership slot key an ADMIT or DISMEMBER takes."""
        if subject in (R.ADMIT, R.DISMEMBER):
            return self._membership_slot(owner, subject, about, e)
        st = self.state
        if subject == R.APPROVE:
            if not (isinstance(about, bytes) and len(about) == 8):
                raise Reject("bad-subject", "about must be a proposal ref")
            p = st.get(b"P" + about)
            if p is None:
                raise Reject("unknown-proposal")
            if R.ref_kid(about) != owner:
                raise Reject("bad-subject", "a council puts only its own proposal to the vote")
            if year_of(deadline) != p[3]:
                raise Reject("wrong-year", "deadline in %d, proposal for %d" % (year_of(deadline), p[3]))
        elif subject == R.EXCHANGE:
            ok = (isinstance(about, list) and len(about) == 3 and about[0] == owner
                  and R._uint(about[1]) and about[1] > 0 and isinstance(about[2], bytes)
                  and R.ids.is_valid(about[2]))
            if not ok:
                raise Reject("bad-subject", "exchange about must be [own kid, amount, exchange account]")
        elif not isinstance(about, str):
            raise Reject("bad-subject", "about must be text")
        return None

    def _membership_slot(self, owner, subject, about, e):
        st = self.state
        if not (isinstance(about, list) and len(about) == 2 and R._is_bytes(about[0], R.ID_LEN)
                and R._uint(about[1])):
            raise Reject("bad-subject", "about must be [council record id, attempt]")
        if owner != _convener(st):
            raise Reject("not-the-federation", "membership votations are held by the economy's federation")
        raw = st.get_record(about[0])
        cand = R.parse(raw) if raw is not None else None
        if cand is None or cand.type != R.COUNCIL:
            raise Reject("unknown-council", "no COUNCIL record " + about[0].hex())
        kid = sign.kid(cand.fields[0])
        if council_key(st, kid) != cand.fields[0]:
            raise Reject("key-exists", "key id " + kid.hex() + " is held by another key")
        if cand.fields[3] not in (None, owner):
            raise Reject("bad-subject", "the council seeks membership of another federation")
        if kid == owner:
            raise Reject("bad-subject", "the federation holds the membership; it cannot admit or dismember itself")
        members = electorate_of(st, e)
        inside = kid in members
        if inside != (subject == R.DISMEMBER):
            raise Reject("bad-subject", "council already a member" if inside else "council not a member")
        if not inside and len(members) >= R.MAX_LIST:
            # an opening lists the whole electorate, at most MAX_LIST kids
            raise Reject("electorate-full", "%d councils is the most one votation can list" % R.MAX_LIST)
        attempt = about[1]
        slot = _slot_key(e, attempt)
        if st.get(slot) is not None:
            raise Reject("membership-slot-taken", "epoch %d attempt %d" % (e, attempt))
        if attempt > 0:
            prev = st.get(slot[:-4] + (attempt - 1).to_bytes(4, "big"))
            v = st.get(b"V" + prev) if prev is not None else None
            if v is None or v[7] is None:
                raise Reject("membership-pending", "attempt %d at epoch %d is not closed" % (attempt - 1, e))
            if v[7][3]:
                raise Reject("membership-slot-taken", "attempt %d at epoch %d passed" % (attempt - 1, e))
        return slot

    def _vote(self, rec):
        st = self.state
        voter, ref, choice = rec.fields
        v = st.get(b"V" + ref)
        if v is None:
            raise Reject("unknown-votation")
        electorate = v[3]
        if voter not in electorate:
            raise Reject("not-in-electorate", voter.hex())
        idx = electorate.index(voter)
        self._verify(rec, council_key(st, voter), "the voting council")
        votes = v[5]
        # a vote after the close is kept (the record is valid) but the
        # close's list of counted votes stays what it was
        first = votes.get(idx)
        if first is None:
            votes[idx] = [choice, rec.id]
            st.put(b"V" + ref, v)
            return None
        # one vote per council counts: the lowest record id, whatever came first
        if rec.id < first[1]:
            votes[idx] = [choice, rec.id]
        if idx not in v[6]:
            v[6].append(idx)
            v[6].sort()
        st.put(b"V" + ref, v)
        return ("double-vote", R.conflict(R.parse(st.get_record(first[1])), rec))

    def _close(self, rec):
        st = self.state
        ref, open_id, yes, no, abstain, vote_ids, time = rec.fields
        v = st.get(b"V" + ref)
        if v is None:
            raise Reject("unknown-votation")
        if v[7] is not None:
            raise Reject("votation-closed")
        if open_id != v[0]:
            raise Reject("bad-close", "close names another opening")
        electorate = v[3]
        tally = [0, 0, 0]
        seen = {}
        for vid in vote_ids:  # ascending: a council's first listed vote is its lowest id
            raw = st.get_record(vid)
            if raw is None:
                raise Reject("unknown-vote", vid.hex())
            vote = R.parse(raw)
            if vote.type != R.VOTE or vote.fields[1] != ref:
                raise Reject("bad-close", "listed record is not a vote of this votation")
            idx = electorate.index(vote.fields[0])
            if idx not in seen:
                seen[idx] = 1
                tally[vote.fields[2]] += 1
        if tally != [no, yes, abstain]:
            raise Reject("tally-mismatch", "close says %d/%d/%d, votes say %d/%d/%d" % (
                yes, no, abstain, tally[1], tally[0], tally[2]))
        n = len(electorate)
        passed = 2 * yes > n
        decided = passed or 2 * (yes + n - len(seen)) <= n
        if time < v[4] and not decided:
            raise Reject("too-early", "deadline not reached and outcome still open")
        if v[1] == R.APPROVE:
            year = st.get(b"P" + v[2])[3]
            if year_of(time) != year:
                raise Reject("wrong-year", "closed in %d, proposal for %d" % (year_of(time), year))
        self._verify(rec, council_key(st, R.ref_kid(ref)), "the owning council")
        v[7] = [yes, no, abstain, passed, rec.id]
        st.put(b"V" + ref, v)
        if passed:
            self._enact(ref, v, rec.id)

    def _enact(self, ref, v, close_id):
        """A passed votation takes effect."""
        st = self.state
        subject, about = v[1], v[2]
        if subject == R.ADMIT or subject == R.DISMEMBER:
            kid = sign.kid(R.parse(st.get_record(about[0])).fields[0])
            e = v[8]
            members = [k for k in electorate_of(st, e) if k != kid]
            if subject == R.ADMIT:
                members.append(kid)
                members.sort()
            st.put(_ekey(e + 1), [members, close_id])
            st.put(b"M", [e + 1])
            c = st.get(b"C" + kid)
            c[4] = ADMITTED if subject == R.ADMIT else DISMEMBERED
            st.put(b"C" + kid, c)
        elif subject == R.APPROVE:
            p = st.get(b"P" + about)
            p[1] = True
            st.put(b"P" + about, p)
        elif subject == R.EXCHANGE:
            st.put(b"X" + ref, [about[0], about[1], about[2], 0, 0])
            # an account named by several allowances shares one cover: only
            # their sum is bounded, so a second allowance doubles nothing
            o = st.get(b"O" + about[2]) or [[], 0]
            if about[0] not in o[0]:
                o[0].append(about[0])
                o[0].sort()
            st.put(b"O" + about[2], o)

    # -- plans and tokens -----------------------------------------------

    def _proposal(self, rec):
        st = self.state
        ref, year, lines = rec.fields
        pk = membership.proposer_key(st, R.ref_kid(ref))  # an individual's consumption proposal
        is_council = pk is None
        if is_council:
            pk = _admitted(st, R.ref_kid(ref), "proposing council")[0]
        if st.get(b"P" + ref) is not None:
            raise Reject("proposal-exists")
        yearend.on_proposal(st, ref, year, is_council)
        total = 0
        for line in lines:
            total += line[2]
        if total > _U64:  # the state stores it as a CBOR uint (an individual could sign one)
            raise Reject("bad-field", "proposal total exceeds 2^64-1 credits")
        if is_council:
            yearend.check_year_total(st, ref, year, total)
        self._verify(rec, pk, "the proposing council" if is_council else "the proposing member")
        if is_council:
            yearend.index_proposal(st, ref, year)
        st.put(b"P" + ref, [total, False, 0, year])

    def _issue(self, rec):
        st = self.state
        ref, value, authority, kind = rec.fields
        issuer = R.ref_kid(ref)
        c = _admitted(st, issuer, "issuer")
        if value == 0:
            raise Reject("bad-field", "issue.value must be positive")
        if st.get(b"T" + ref) is not None:
            raise Reject("token-exists")
        if kind == R.NORMAL:
            key = b"P" + authority
            p = st.get(key)
            if p is None:
                raise Reject("unknown-proposal")
            if R.ref_kid(authority) != issuer:
                raise Reject("not-issuer", "a council issues only under its own proposal")
            if not p[1]:
                raise Reject("not-approved", "no votation majority for this proposal")
            if p[2] + value > p[0]:
                raise Reject("over-cap", "issuing %d would exceed the approved %d (already %d)" % (value, p[0], p[2]))
            yearend.check_issue(st, issuer, p)
            slot = 2
        else:
            key = b"X" + authority
            p = st.get(key)
            if p is None:
                raise Reject("no-exchange-allowance")
            if p[0] != issuer:
                raise Reject("not-issuer", "allowance belongs to another council")
            if p[3] + value > p[1]:
                raise Reject("over-cap", "change tokens would exceed the allowance of %d" % p[1])
            slot = 3
        self._verify(rec, c[0], "the issuing council")
        p[slot] += value
        st.put(key, p)
        if kind == R.NORMAL:
            yearend.on_issue(st, issuer, p, value)
        st.put(b"T" + ref, [issuer, value, kind, authority, None, [], []])

    def _set_user(self, rec):
        st = self.state
        ref, user_key = rec.fields
        t = st.get(b"T" + ref)
        if t is None:
            raise Reject("unknown-token", "SET_USER needs the token in the CTB")
        if t[4] is not None:
            if yearend.set_user_again(t, user_key):
                # what the year end did already: the record is kept, nothing changes
                self._verify(rec, council_key(st, t[0]), "the token's issuer")
                return None
            raise Reject("already-usable", "the token's user is already set")
        # (no year-closed check: every token of a closed year that was still ISSUED is accounted by its
        # year end, which sets its user, so a later SET_USER meets the branch above)
        x = o = None
        if t[2] == R.CHANGE:
            # change enters the economy only against normal credits taken
            # into the allowance's exchange account, released change counted
            # over every allowance naming that account (the seed: the same
            # amount of normal tokens must be taken out)
            x = st.get(b"X" + t[3])
            o = st.get(b"O" + x[2])
            took = amount(st.get(b"N" + x[2]))
            released = amount(o[1])
            if released + t[1] > took:
                raise Reject("exchange-not-covered",
                             "released change would exceed normal credits taken in (%d, %d released)" % (took, released))
        ckey = council_key(st, t[0])
        self._verify(rec, ckey, "the token's issuer")
        if x is not None:
            x[4] += t[1]
            o[1] = _stored(released + t[1])
            st.put(b"X" + t[3], x)
            st.put(b"O" + x[2], o)
        yearend.on_set_user(st, t, user_key, ckey)
        t[4] = user_key
        st.put(b"T" + ref, t)

    def _use(self, rec):
        st = self.state
        ref, product, account = rec.fields
        t = st.get(b"T" + ref)
        if t is None:
            raise Reject("unknown-token")
        if t[4] is None:
            raise Reject("not-usable", "the issuer has not set a user")
        ckey = council_key(st, t[0])
        yearend.check_use(st, t, ckey)
        self._verify(rec, t[4], "the token's user")
        before = effective_use(t)
        if t[2] == R.NORMAL and not any(u[2] == account for u in t[5]):
            st.put(b"N" + account, _stored(amount(st.get(b"N" + account)) + t[1]))
        yearend.on_use(st, t, ckey)
        t[5].append([rec.id, product, account])
        t[5].sort()
        self._move_credit(t, before)
        st.put(b"T" + ref, t)
        if before is None:
            return None
        # a second, different spend of one token, both signed by its user
        return ("double-spend", R.conflict(R.parse(st.get_record(before[0])), rec))

    def _move_credit(self, t, before):
        """After t's uses or receipts changed: credit moves from the old
        effective use to the new one (if it changed)."""
        after = effective_use(t)
        if before is not None and after is not None and before[0] == after[0]:
            return
        if before is not None:
            self._credit(t, before, -t[1])
        if after is not None:
            self._credit(t, after, t[1])

    def _credit(self, t, u, value):
        st = self.state
        for key in (b"A" + u[2], b"Q" + u[1]):
            # an account back at zero (a double spend's loser credited, then
            # moved to the winner) is deleted, as if never credited
            total = amount(st.get(key)) + value
            st.put(key, _stored(total) if total else None)

    def _accounted(self, rec):
        st = self.state
        ref, use, node, time = rec.fields
        t = st.get(b"T" + ref)
        if t is None:
            raise Reject("unknown-token")
        found = False
        for u in t[5]:
            if u[0] == use:
                found = True
        if not found:
            raise Reject("unknown-use", "no such USE of this token")
        k = st.get(b"K" + node)
        # a key may hold several memberships (membership.py): it accounts if
        # one of them is the role node, certified by a council still admitted
        # (only the economy's federation certifies node keys, see _member)
        certifiers = [c for c, role in membership.of(st, node) if role == R.ROLE_NODE]
        if k is None or not certifiers:
            raise Reject("not-a-ctb-node", "%s is not a key certified with the role node" % node.hex())
        if not [1 for c in certifiers if is_admitted(st, c)]:
            raise Reject("not-a-ctb-node", "%s was certified by a council not admitted" % node.hex())
        self._verify(rec, k[0], "the accounting CTB node")
        before = effective_use(t)
        t[6].append([rec.id, use])
        t[6].sort()
        self._move_credit(t, before)
        st.put(b"T" + ref, t)

    def account_excess(self, ref, owner_key, rid, account):
        """Year end (yearend.apply): the unused token ref becomes ACCOUNTED
        into the special account by the year-end publication rid, which
        stands for both its use and its receipt; credited as a use is."""
        st = self.state
        t = st.get(b"T" + ref)
        if t[4] is None:
            t[4] = owner_key
        u = [rid, account, account]
        t[5] = [u]
        t[6] = [[rid, rid]]
        st.put(b"T" + ref, t)
        self._credit(t, u, t[1])

    def _publication(self, rec):
        st = self.state
        ref, kind, subject, content = rec.fields
        c = _admitted(st, R.ref_kid(ref), "publisher")
        if st.get(b"U" + ref) is not None:
            raise Reject("publication-exists")
        try:
            publication.check(st, rec, R.ref_kid(ref), c)
        except publication.PublicationError as e:
            raise Reject("bad-publication", e.detail)
        if kind == publication.YEAR_END:
            yearend.check(st, rec, c)
        self._verify(rec, c[0], "the publishing council")
        st.put(b"U" + ref, [kind, subject, content, rec.id])
        if kind == publication.YEAR_END:
            yearend.apply(self, rec, c)

    def _conflict(self, rec):
        """Evidence from a peer: both records must be here already and
        really conflict (then it is a duplicate of what we derived) ."""
        st = self.state
        try:
            a = R.parse(rec.fields[0])
            b = R.parse(rec.fields[1])
        except RecordError as e:
            raise Reject("bad-evidence", e.reason)
        if st.get_record(a.id) is None or st.get_record(b.id) is None:
            raise Reject("unknown-record", "evidence names records this CTB lacks")
        if not (a.id < b.id and a.type == b.type and a.type in (R.USE, R.VOTE)):
            raise Reject("bad-evidence", "not two records of one kind in id order")
        same = a.fields[0] == b.fields[0] if a.type == R.USE else a.fields[:2] == b.fields[:2]
        if not same:
            raise Reject("bad-evidence", "records do not conflict")


_RULES = {
    R.GENESIS: Ledger._genesis, R.COUNCIL: Ledger._council, R.MEMBER: Ledger._member,
    R.VOTATION_OPEN: Ledger._open, R.VOTE: Ledger._vote, R.VOTATION_CLOSE: Ledger._close,
    R.PROPOSAL: Ledger._proposal, R.ISSUE: Ledger._issue, R.SET_USER: Ledger._set_user,
    R.USE: Ledger._use, R.ACCOUNTED: Ledger._accounted, R.PUBLICATION: Ledger._publication,
    R.CONFLICT: Ledger._conflict,
}


# Rejections that may only mean "its dependency comes later in this batch"
# (e.g. a certificate from a council admitted by a close in the same batch).
DEPENDENCY = ("unknown-council", "council-not-admitted", "unknown-proposal", "not-approved",
              "unknown-epoch", "membership-pending", "no-genesis",
              "unknown-votation", "unknown-vote", "unknown-token", "not-usable", "unknown-use",
              "unknown-record", "no-exchange-allowance", "exchange-not-covered", "not-a-ctb-node",
              "unknown-signer", "bad-parent", "not-a-proposer", "excess-unlisted")


def apply_batch(base, raws, verify=None):
    """Validate a batch over base state. Returns (overlay, verdicts); if any
    verdict is REJECTED the batch must not be stored (the caller commits
    overlay.kv and overlay.added in one transaction only when all passed).
    Records are applied in type order (types are numbered in dependency
    order); those rejected for a missing dependency are tried again while
    another pass makes progress, so any order of a valid set is accepted.

    verify replaces sign.verify for this batch. A host that checks signatures
    in bulk passes one that records (key, message, signature) and answers
    True; if every recorded signature then verifies, the outcome is exactly
    that of checking each in turn, and if one does not, it must run the
    batch again with the real verify to learn the verdicts."""
    todo = []
    verdicts = [None] * len(raws)
    for i in range(len(raws)):
        rec = raws[i]
        try:
            if not isinstance(rec, R.Record):
                rec = R.parse(rec)
        except RecordError as e:
            verdicts[i] = Verdict(REJECTED, e.reason, e.detail)
            continue
        # (type, position, record): sorted by the first two (positions differ,
        # so records are never compared), without a key function call each
        todo.append((rec.type, i, rec))
    ov = Overlay(base)
    submit = Ledger(ov, verify).submit
    todo.sort()
    while todo:
        retry = []
        for item in todo:
            v = verdicts[item[1]] = submit(item[2])
            if v.code == REJECTED and v.reason in DEPENDENCY:
                retry.append(item)
        if len(retry) == len(todo):
            break
        todo = retry
    return ov, verdicts
