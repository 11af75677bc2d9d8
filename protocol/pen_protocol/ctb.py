"""The one validator of Credit Token Blockchain and votation transitions.

Everything that decides whether a record may enter a CTB lives here: the token
state machine of the seed's "Participatory Credits" table, minting by Proof of
Majority, exchange (change) tokens, council votations, and what happens when
one signer signs two records that cannot both hold. Storage (SQLite,
PostgreSQL, a dict in tests or on a board) only supplies a State; the
rules never know which.

    ISSUED --SET_USER (issuer)--> USABLE --USE (user)--> USED --ACCOUNTED (CTB node)--> ACCOUNTED

Derived state is a function of the set of accepted records, not of their
arrival order, so peers that hold the same records hold the same state:
- double spend: two different USEs of one token are both kept; the one with
  the lower record id is the effective one (exactly one account is credited,
  so the books still balance) and a CONFLICT record holding both names the
  user who signed them;
- double vote: a council that signs two different votes in one votation has
  its vote voided (neither counts) and a CONFLICT record holds both.
Records are applied in type order (records.py numbers types in dependency
order), which sync and batch import do.

State keys (bytes) and values (CBOR-able lists):
  b"G"          [name, founders, genesis id]
  b"C"+kid      council [key, name, kind, parent, status]
  b"K"+kid      member key [key, council kid, role]
  b"V"+ref      votation [open id, subject, about, electorate, deadline, votes{index: [choice, vote id]},
                          void [index...], closed None | [yes, no, abstain, passed, close id]]
  b"P"+ref      proposal [total credits, approved, issued, year]
  b"X"+ref      exchange allowance (keyed by its votation) [shop kid, amount, account, issued, released]
  b"T"+ref      token [issuer kid, value, kind, authority, user key | None, uses [[use id, product, account]...],
                       accounted [[receipt id, use id]...]]
  b"A"+account  credits received by an account (product id bytes)
  b"Q"+product  credits spent on a product
  b"U"+ref      publication [kind, subject, content, id] (content checked by publication.py)
  b"R"+kid      every [council, role] of a key holding several memberships (membership.py)
  b"Y"+kid+year [closed, proposal refs, unissued] a council's plan year (yearend.py)
A put of None deletes the key: a value that returns to nothing leaves no
trace, so the state does not depend on the order that led there.
"""

from . import records as R
from .records import RecordError
from . import sign
from . import membership, publication, yearend

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
        return [_copy(x) for x in v]
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    return v


class Overlay:
    """Buffers one batch's changes over a base state, so a batch is applied
    whole or not at all: storage writes .kv and .added in one transaction."""

    def __init__(self, base):
        self.base = base
        self.kv = {}
        self.added = []  # Records in acceptance order
        self._recs = {}
        self._read = {}

    def get(self, key):
        if key in self.kv:
            return self.kv[key]
        if key in self._read:
            return self._read[key]
        # a private copy: rules mutate what they read, and the base must not
        # change before the batch commits
        v = _copy(self.base.get(key))
        self._read[key] = v
        return v

    def put(self, key, value):
        self.kv[key] = value

    def get_record(self, rid):
        raw = self._recs.get(rid)
        return raw if raw is not None else self.base.get_record(rid)

    def add_record(self, rec):
        self._recs[rec.id] = rec.raw
        self.added.append(rec)


def token_state(t):
    """The seed's state name of a token value from the state."""
    if t is None:
        return None
    if t[4] is None:
        return ISSUED
    if not t[5]:
        return USABLE
    win = t[5][0][0]
    for acc in t[6]:
        if acc[1] == win:
            return ACCOUNTED
    return USED


def council_key(state, kid):
    c = state.get(b"C" + kid)
    return c[0] if c else None


def is_admitted(state, kid):
    c = state.get(b"C" + kid)
    return bool(c) and c[4] == ADMITTED


def _admitted(state, kid, who):
    c = state.get(b"C" + kid)
    if c is None:
        raise Reject("unknown-council", who + " " + kid.hex())
    if c[4] != ADMITTED:
        raise Reject("council-not-admitted", who + " " + kid.hex())
    return c


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

    # -- councils -------------------------------------------------------

    def _genesis(self, rec):
        st = self.state
        if st.get(b"G") is not None:
            raise Reject("genesis-exists")
        founders = rec.fields[1]
        for kid in founders:
            if st.get(b"C" + kid) is None:
                raise Reject("unknown-council", "founder " + kid.hex())
        self._verify(rec, council_key(st, founders[0]), "the first founder")
        for kid in founders:
            c = st.get(b"C" + kid)
            st.put(b"C" + kid, c[:4] + [ADMITTED])
        st.put(b"G", [rec.fields[0], founders, rec.id])

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
        ref, subject, about, electorate, deadline = rec.fields
        owner = R.ref_kid(ref)
        c = _admitted(st, owner, "owner")
        if st.get(b"V" + ref) is not None:
            raise Reject("votation-exists")
        for kid in electorate:
            _admitted(st, kid, "elector")
        if owner not in electorate:
            raise Reject("bad-electorate", "the owner must be in the electorate")
        self._check_subject(owner, subject, about)
        self._verify(rec, c[0], "the owning council")
        st.put(b"V" + ref, [rec.id, subject, about, electorate, deadline, {}, [], None])

    def _check_subject(self, owner, subject, about):
        st = self.state
        if subject in (R.ADMIT, R.DISMEMBER):
            if not (isinstance(about, bytes) and len(about) == 4):
                raise Reject("bad-subject", "about must be a council key id")
            c = st.get(b"C" + about)
            if c is None:
                raise Reject("unknown-council", "subject " + about.hex())
            if subject == R.ADMIT and c[4] == ADMITTED:
                raise Reject("bad-subject", "council already admitted")
            if subject == R.DISMEMBER and c[4] != ADMITTED:
                raise Reject("bad-subject", "council not admitted")
        elif subject == R.APPROVE:
            if not (isinstance(about, bytes) and len(about) == 8):
                raise Reject("bad-subject", "about must be a proposal ref")
            p = st.get(b"P" + about)
            if p is None:
                raise Reject("unknown-proposal")
            if R.ref_kid(about) != owner:
                raise Reject("bad-subject", "a council puts only its own proposal to the vote")
            if p[1]:
                raise Reject("bad-subject", "proposal already approved")
        elif subject == R.EXCHANGE:
            ok = (isinstance(about, list) and len(about) == 3 and about[0] == owner
                  and R._uint(about[1]) and about[1] > 0 and isinstance(about[2], bytes)
                  and R.ids.is_valid(about[2]))
            if not ok:
                raise Reject("bad-subject", "exchange about must be [own kid, amount, exchange account]")
        elif not isinstance(about, str):
            raise Reject("bad-subject", "about must be text")

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
        votes, void = v[5], v[6]
        if idx in void:
            evidence = None
        elif idx in votes:
            other = R.parse(st.get_record(votes[idx][1]))
            evidence = R.conflict(other, rec)
        else:
            # a vote after the close is kept (the record is valid) but the
            # close's list of counted votes stays what it was
            votes[idx] = [choice, rec.id]
            st.put(b"V" + ref, v)
            return None
        if idx in votes:
            del votes[idx]
        if idx not in void:
            void.append(idx)
            void.sort()
        st.put(b"V" + ref, v)
        return ("double-vote", evidence)

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
        for vid in vote_ids:
            raw = st.get_record(vid)
            if raw is None:
                raise Reject("unknown-vote", vid.hex())
            vote = R.parse(raw)
            if vote.type != R.VOTE or vote.fields[1] != ref:
                raise Reject("bad-close", "listed record is not a vote of this votation")
            idx = electorate.index(vote.fields[0])
            if idx in seen or idx in v[6]:
                raise Reject("bad-close", "a council counted twice or a void vote counted")
            seen[idx] = 1
            tally[vote.fields[2]] += 1
        if tally != [no, yes, abstain]:
            raise Reject("tally-mismatch", "close says %d/%d/%d, votes say %d/%d/%d" % (
                yes, no, abstain, tally[1], tally[0], tally[2]))
        n = len(electorate)
        passed = 2 * yes > n
        decided = passed or 2 * (yes + n - len(vote_ids)) <= n
        if time < v[4] and not decided:
            raise Reject("too-early", "deadline not reached and outcome still open")
        self._verify(rec, council_key(st, R.ref_kid(ref)), "the owning council")
        v[7] = [yes, no, abstain, passed, rec.id]
        st.put(b"V" + ref, v)
        if passed:
            self._enact(ref, v[1], v[2])

    def _enact(self, ref, subject, about):
        """A passed votation takes effect."""
        st = self.state
        if subject == R.ADMIT or subject == R.DISMEMBER:
            c = st.get(b"C" + about)
            c[4] = ADMITTED if subject == R.ADMIT else DISMEMBERED
            st.put(b"C" + about, c)
        elif subject == R.APPROVE:
            p = st.get(b"P" + about)
            p[1] = True
            st.put(b"P" + about, p)
        elif subject == R.EXCHANGE:
            st.put(b"X" + ref, [about[0], about[1], about[2], 0, 0])

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
        if total > 0xFFFFFFFFFFFFFFFF:  # the state stores it as a CBOR uint (an individual could sign one)
            raise Reject("bad-field", "proposal total exceeds 2^64-1 credits")
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
        st.put(b"T" + ref, [issuer, value, kind, authority, None, [], []])

    def _set_user(self, rec):
        st = self.state
        ref, user = rec.fields
        t = st.get(b"T" + ref)
        if t is None:
            raise Reject("unknown-token", "SET_USER needs the token in the CTB")
        if t[4] is not None:
            raise Reject("already-usable", "the token's user is already set")
        yearend.check_set_user(st, t)
        x = None
        if t[2] == R.CHANGE:
            # change enters the economy only against normal credits the shop
            # took into its exchange account (the seed: the same amount of
            # normal tokens must be taken out)
            x = st.get(b"X" + t[3])
            took = st.get(b"A" + x[2]) or 0
            if x[4] + t[1] > took:
                raise Reject("exchange-not-covered", "released change would exceed credits taken in (%d)" % took)
        self._verify(rec, council_key(st, t[0]), "the token's issuer")
        if x is not None:
            x[4] += t[1]
            st.put(b"X" + t[3], x)
        t[4] = user
        st.put(b"T" + ref, t)

    def _use(self, rec):
        st = self.state
        ref, product, account = rec.fields
        t = st.get(b"T" + ref)
        if t is None:
            raise Reject("unknown-token")
        if t[4] is None:
            raise Reject("not-usable", "the issuer has not set a user")
        yearend.check_use(st, t, council_key(st, t[0]))
        self._verify(rec, t[4], "the token's user")
        uses = t[5]
        before = uses[0] if uses else None
        uses.append([rec.id, product, account])
        uses.sort()
        after = uses[0]
        if before is None or before[0] != after[0]:
            if before is not None:
                self._credit(before[1], before[2], -t[1])
            self._credit(after[1], after[2], t[1])
        st.put(b"T" + ref, t)
        if before is None:
            return None
        # a second, different spend of one token, both signed by its user
        first = R.parse(st.get_record(before[0] if before[0] != rec.id else uses[1][0]))
        return ("double-spend", R.conflict(first, rec))

    def _credit(self, product, account, value):
        st = self.state
        for key in (b"A" + account, b"Q" + product):
            # an account back at zero (a double spend's loser credited, then
            # moved to the winner) is deleted, as if never credited
            total = (st.get(key) or 0) + value
            st.put(key, total if total else None)

    def _accounted(self, rec):
        st = self.state
        ref, use_id, node, time = rec.fields
        t = st.get(b"T" + ref)
        if t is None:
            raise Reject("unknown-token")
        found = False
        for u in t[5]:
            if u[0] == use_id:
                found = True
        if not found:
            raise Reject("unknown-use", "no such USE of this token")
        k = st.get(b"K" + node)
        if k is not None:
            if not [1 for c, role in membership.of(st, node) if role == R.ROLE_NODE and is_admitted(st, c)]:
                raise Reject("not-a-ctb-node", node.hex())
            pk = k[0]
        else:
            pk = council_key(st, node)
            if pk is None or not is_admitted(st, node):
                raise Reject("not-a-ctb-node", node.hex())
        self._verify(rec, pk, "the accounting CTB node")
        t[6].append([rec.id, use_id])
        t[6].sort()
        st.put(b"T" + ref, t)

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
              "unknown-votation", "unknown-vote", "unknown-token", "not-usable", "unknown-use",
              "unknown-record", "no-exchange-allowance", "exchange-not-covered", "not-a-ctb-node",
              "unknown-signer", "bad-parent", "not-a-proposer")


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
        try:
            todo.append((i, raws[i] if isinstance(raws[i], R.Record) else R.parse(raws[i])))
        except RecordError as e:
            verdicts[i] = Verdict(REJECTED, e.reason, e.detail)
    ov = Overlay(base)
    led = Ledger(ov, verify)
    todo.sort(key=lambda p: (p[1].type, p[0]))
    while todo:
        retry = []
        for i, rec in todo:
            v = led.submit(rec)
            verdicts[i] = v
            if v.code == REJECTED and v.reason in DEPENDENCY:
                retry.append((i, rec))
        if len(retry) == len(todo):
            break
        todo = retry
    return ov, verdicts
