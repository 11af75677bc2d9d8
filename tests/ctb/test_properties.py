"""The ledger's properties, not examples: a hypothesis state machine in which
honest councils, payers, a shop and two CTB nodes act beside an attacker who
holds a member council's key (the Supply Hub), a registered but never admitted
council's key and a payer's key, signs anything with them, replays, reorders
and grinds record ids. After every step:

- credits accounted <= credits approved by real majorities (a passed
  approval has more yes votes than half of its epoch's true councils);
- an account credited by an ACCOUNTED use never loses that credit;
- change released against an exchange account <= normal credits retired into
  it, up to credits moved away by a double spend that left evidence against
  its signer (the offline risk the seed accepts);
- every passed votation has a majority of its true electorate;
- the state is a function of the accepted set: the accepted records, shuffled
  and fed one by one to a fresh ledger, give the same state.

Fast and deterministic by default (a few seconds, the same examples every
run, no example database: derandomize=True), so CI cannot fail by luck.
Explore locally with random examples and many seeds:

    for s in $(seq 1 20); do PEN_PROPERTY_RANDOM=1 PEN_PROPERTY_EXAMPLES=200 \
        .venv/bin/pytest -q -p no:cacheprovider tests/ctb/test_properties.py --hypothesis-seed=$s || break; done

A failure found that way becomes a plain regression test at the end of this file.
"""
import os
import random

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pen import build as B
from pen.keys import Signer
from pen.samples import economy, T0
from pen_protocol import cbor, ctb, ids, records as R

EXAMPLES = int(os.environ.get("PEN_PROPERTY_EXAMPLES", "40"))
STEPS = int(os.environ.get("PEN_PROPERTY_STEPS", "40"))
RANDOM = bool(os.environ.get("PEN_PROPERTY_RANDOM"))  # else derandomized (CI)
REPLAYS = 2  # shuffled replays of the accepted set after every step

EXCHANGE = "841215000001"  # the village store's exchange account
ACCOUNTS = ("401416000099", "501000000001", EXCHANGE, "841215000002")
NEWCOMER = Signer.from_phrase("prop/newcomer")
MALLORY = Signer.from_phrase("prop/mallory")
CARLOS = Signer.from_phrase("prop/carlos")
ROGUE = Signer.from_phrase("prop/rogue")
NODE2 = Signer.from_phrase("prop/node-2")
HUB_NODE = Signer.from_phrase("prop/hub-node")


def _no_verify(pk, msg, sig):
    return True  # the replay re-checks the rules; signatures were checked on first acceptance


def _settle(led, todo, rnd):
    """Submit todo in shuffled passes until nothing moves; return what is left
    (every refusal must be a missing dependency)."""
    while todo:
        rnd.shuffle(todo)
        retry = []
        for r in todo:
            v = led.submit(r)
            if v.code == ctb.REJECTED:
                assert v.reason in ctb.DEPENDENCY, (r, v)
                retry.append(r)
        if len(retry) == len(todo):
            return retry
        todo = retry
    return []


def replay(records, seed, last=None):
    """A fresh ledger fed the records one by one in a shuffled order,
    retrying those refused for a missing dependency, with `last` held back
    until everything that does not need it is in (the latest it can arrive: a
    rule that depended on some record being absent would refuse it then)."""
    rnd = random.Random(seed)
    st_ = ctb.MemoryState()
    led = ctb.Ledger(st_, _no_verify)
    stuck = _settle(led, [r for r in records if r is not last], rnd)
    if last is not None:
        stuck = _settle(led, stuck + [last], rnd)
    assert not stuck, "replay stuck on %r" % stuck
    return st_


def _digest(st_):
    """The state as a CTB stores it (deterministic CBOR values, so a map's
    insertion order does not count) and the ids of every record but evidence."""
    return (sorted((k, cbor.dumps(v)) for k, v in st_.kv.items()),
            sorted(rid for rid, raw in st_.recs.items() if raw[0] != R.CONFLICT))


class Ledger(RuleBasedStateMachine):

    @initialize()
    def found(self):
        self.k, ordered, self.n = economy()
        k = self.k
        self.fed, self.fp, self.vc, self.hub, self.shop = (k[x] for x in (
            "valley-federation", "formosa-plumbing", "village-consumers", "supply-hub", "village-store"))
        self.honest_voters = [self.fed, self.fp, self.vc, self.shop, NEWCOMER]  # NEWCOMER once admitted
        self.st = ctb.MemoryState()
        self.led = ctb.Ledger(self.st)
        self.accepted = []
        self.seen = []
        self.last = {}  # record id -> the Verdict its latest submission got
        self.serial = 100
        # the test's own view of who the councils are, epoch by epoch
        self.true_electorate = {0: sorted(s.kid for s in (self.fed, self.fp, self.vc, self.hub, self.shop))}
        self.credited = {}  # token ref -> (account, value) when first accounted
        self.tokens = {"carlos": [], "mallory": []}
        self.proposals = [self.n["proposal"].fields[0]]  # Formosa's approved proposals
        for r in ordered[:-1]:
            self._submit(r, must=True)
        self._submit(B.council(NEWCOMER, "Newcomer", "production", self.fed), must=True)
        self._submit(B.council(ROGUE, "Rogue", "production"), must=True)
        self._submit(B.member(self.fed, NODE2, "node"), must=True)
        op, votes = self._vote_on(self.shop, "exchange", B.exchange_about(self.shop, 50000, EXCHANGE))
        self._submit(B.votation_close(self.shop, op, votes, T0 + 3600), must=True)
        self.allowance = op.fields[0]

    # -- helpers ----------------------------------------------------------

    def _next(self):
        self.serial += 1
        return self.serial

    def _submit(self, rec, must=False):
        v = self.led.submit(rec)
        if rec.id not in self.last:
            self.seen.append(rec)
        self.last[rec.id] = v
        if must:
            assert v.code == ctb.ACCEPTED, (rec, v)
        if v.code in (ctb.ACCEPTED, ctb.CONFLICT):
            self.accepted.append(rec)
            if v.evidence is not None:
                self.accepted.append(v.evidence)
        return v

    def _epoch(self):
        return ctb.epoch(self.st)

    def _vote_on(self, owner, subject, about, voters=None, epoch=None):
        e = self._epoch() if epoch is None else epoch
        op = B.votation_open(owner, self._next(), subject, about, self.true_electorate[e], T0 + 86400, e)
        self._submit(op, must=True)
        if voters is None:
            voters = [v for v in self.honest_voters if v.kid in self.true_electorate[e]]
        votes = [B.vote(s, op.fields[0], "yes") for s in voters]
        for v in votes:
            self._submit(v, must=True)
        return op, votes

    def _live_tokens(self, who):
        return [t for t in self.tokens[who] if ctb.user(self.st.get(b"T" + t))]

    # -- honest actors ----------------------------------------------------

    @rule(who=st.sampled_from(["carlos", "mallory"]), value=st.integers(1, 4000), data=st.data())
    def salary(self, who, value, data):
        """Formosa pays a salary token under one of its approved proposals
        (refused once the proposal's approved credits are issued)."""
        t = B.issue(self.fp, self._next(), value, data.draw(st.sampled_from(self.proposals)))
        if self._submit(t).code == ctb.ACCEPTED:
            self._submit(B.set_user(self.fp, t.fields[0], CARLOS if who == "carlos" else MALLORY), must=True)
            self.tokens[who].append(t.fields[0])

    @rule(data=st.data(), account=st.sampled_from(ACCOUNTS))
    def carlos_pays(self, data, account):
        fresh = [t for t in self._live_tokens("carlos") if not ctb.uses(self.st.get(b"T" + t))]
        if fresh:
            self._submit(B.use(CARLOS, data.draw(st.sampled_from(fresh)), account, account), must=True)

    @rule(node=st.sampled_from(["common-node", "node-2"]))
    def ctb_node_accounts(self, node):
        key = self.k["common-node"] if node == "common-node" else NODE2
        for kk in sorted(self.st.kv):
            t = self.st.kv[kk]
            if kk[:1] == b"T" and ctb.uses(t) and not ctb.is_accounted(t):
                u = ctb.effective_use(t)
                self._submit(B.accounted(key, kk[1:], ctb.use_id(u), T0 + 7200), must=True)
                self.credited[kk[1:]] = (ctb.use_account(u), ctb.token_value(t))

    @rule(value=st.integers(1, 6000))
    def shop_gives_change(self, value):
        c = B.issue(self.shop, self._next(), value, self.allowance, change=True)
        if self._submit(c).code == ctb.ACCEPTED:
            self._submit(B.set_user(self.shop, c.fields[0], CARLOS))  # refused when not covered

    @rule(credits=st.integers(1, 50000))
    def honest_approval(self, credits):
        p = B.proposal(self.fp, self._next(), 2026, [("40141600", 1, credits)])
        self._submit(p, must=True)
        op, votes = self._vote_on(self.fp, "approve", p.fields[0])
        self._submit(B.votation_close(self.fp, op, votes, T0 + 3600), must=True)
        self.proposals.append(p.fields[0])

    @rule(subject=st.sampled_from(["admit", "dismember"]), who=st.sampled_from(["newcomer", "hub"]))
    def federation_changes_membership(self, subject, who):
        """The federation holds an ADMIT or DISMEMBER (of the newcomer, or of
        the attacker's council) and the honest councils carry it."""
        signer = NEWCOMER if who == "newcomer" else self.hub
        e = self._epoch()
        members = self.true_electorate[e]
        if (signer.kid in members) != (subject == "dismember"):
            return
        rec = next(r for r in self.seen if r.type == R.COUNCIL and r.fields[0] == signer.public_key)
        op, votes = self._vote_on(self.fed, subject, B.membership_about(rec))
        self._submit(B.votation_close(self.fed, op, votes, T0 + 3600), must=True)
        if subject == "admit":
            self.true_electorate[e + 1] = sorted(members + [signer.kid])
        else:
            self.true_electorate[e + 1] = [kid for kid in members if kid != signer.kid]

    # -- the attacker -----------------------------------------------------

    @rule(data=st.data(), tries=st.integers(1, 8))
    def mallory_grinds(self, data, tries):
        """Mallory pays, then signs more USEs of the same token with other
        accounts, hoping one sorts first and takes the credit."""
        live = self._live_tokens("mallory")
        if not live:
            return
        t = data.draw(st.sampled_from(live))
        for i in range(tries):
            acct = "5%011d" % data.draw(st.integers(0, 10 ** 6))
            self._submit(B.use(MALLORY, t, acct, acct))

    @rule(account=st.sampled_from(ACCOUNTS), data=st.data())
    def mallory_pays(self, account, data):
        live = [t for t in self._live_tokens("mallory") if not ctb.uses(self.st.get(b"T" + t))]
        if live:
            self._submit(B.use(MALLORY, data.draw(st.sampled_from(live)), account, account))

    def attack(self, kind, credits):
        """One of ATTACKS (each is its own rule, so each is tried often)."""
        hub = self.hub
        e = self._epoch()
        if kind == "self-electorate":
            p = B.proposal(hub, self._next(), 2026, [("40141600", 1, credits)])
            self._submit(p)
            op = R.encode(R.VOTATION_OPEN, [R.make_ref(hub.kid, self._next()), R.APPROVE, p.fields[0], [hub.kid],
                                            T0 + 86400, e], hub)
            self._submit(op)
            yes = B.vote(hub, op.fields[0], "yes")
            self._submit(yes)
            self._submit(B.votation_close(hub, op, [yes], T0 + 3600))
            self._submit(B.issue(hub, self._next(), credits, p.fields[0]))
        elif kind == "hub-approval":
            p = B.proposal(hub, self._next(), 2026, [("40141600", 1, credits)])
            self._submit(p)
            op = R.encode(R.VOTATION_OPEN, [R.make_ref(hub.kid, self._next()), R.APPROVE, p.fields[0],
                                            self.true_electorate[e], T0 + 86400, e], hub)
            self._submit(op)
            votes = [B.vote(hub, op.fields[0], "yes"), B.vote(hub, op.fields[0], "no")]
            for v in votes:
                self._submit(v)
            self._submit(B.votation_close(hub, op, votes, T0 + 3600))
            self._submit(B.votation_close(hub, op, votes, T0 + 86400))
            self._submit(B.issue(hub, self._next(), credits, p.fields[0]))
        elif kind in ("council-receipt", "mallory-receipt"):
            signer = hub if kind == "council-receipt" else MALLORY
            for t in self.tokens["mallory"]:
                for u in ctb.uses(self.st.get(b"T" + t)):
                    self._submit(B.accounted(signer, t, ctb.use_id(u), T0))
        elif kind == "hub-node":
            # the hub certifies its own CTB node key and accounts Mallory's ground uses with it
            self._submit(B.member(hub, HUB_NODE, "node"))
            for t in self.tokens["mallory"]:
                for u in ctb.uses(self.st.get(b"T" + t)):
                    self._submit(B.accounted(HUB_NODE, t, ctb.use_id(u), T0))
        elif kind == "steal-set-user":
            t = B.issue(self.fp, self._next(), 10, self.n["proposal"].fields[0])
            if self._submit(t).code == ctb.ACCEPTED:
                self._submit(B.set_user(hub, t.fields[0], MALLORY))
        elif kind == "rogue-open":
            self._submit(B.votation_open(ROGUE, self._next(), "other", "x", [ROGUE], T0 + 86400, e))
        elif kind == "vote-twice":
            op = R.encode(R.VOTATION_OPEN, [R.make_ref(hub.kid, self._next()), R.OTHER, "a hub party",
                                            self.true_electorate[e], T0 + 86400, e], hub)
            self._submit(op)
            for c in (R.YES, R.NO, R.ABSTAIN):
                self._submit(B.vote(hub, op.fields[0], c))
        elif kind == "claim-account":
            # the hub asks for change against the store's exchange account, votes alone, closes, issues
            op = R.encode(R.VOTATION_OPEN, [R.make_ref(hub.kid, self._next()), R.EXCHANGE,
                                            [hub.kid, credits, ids.pack(EXCHANGE)], self.true_electorate[e],
                                            T0 + 86400, e], hub)
            self._submit(op)
            v = B.vote(hub, op.fields[0], "yes")
            self._submit(v)
            self._submit(B.votation_close(hub, op, [v], T0 + 86400))
            c = B.issue(hub, self._next(), min(credits, 6000), op.fields[0], change=True)
            self._submit(c)
            self._submit(B.set_user(hub, c.fields[0], MALLORY))
        elif kind == "hub-admits":
            rec = B.council(ROGUE, "Rogue", "production")
            self._submit(R.encode(R.VOTATION_OPEN, [R.make_ref(hub.kid, self._next()), R.ADMIT,
                                                    B.membership_about(rec), self.true_electorate[e],
                                                    T0 + 86400, e], hub))
        elif kind == "over-cap":
            self._submit(B.issue(hub, self._next(), credits, self.n["proposal"].fields[0]))
        elif kind == "old-epoch" and e > 0:
            # a votation pinned to an older membership: allowed by the ledger
            # (that epoch's councils), so it passes only with that epoch's majority
            op = R.encode(R.VOTATION_OPEN, [R.make_ref(hub.kid, self._next()), R.OTHER, "old times",
                                            self.true_electorate[0], T0 + 86400, 0], hub)
            self._submit(op)
            v = B.vote(hub, op.fields[0], "yes")
            self._submit(v)
            self._submit(B.votation_close(hub, op, [v], T0 + 86400))

    @rule(data=st.data())
    def replay_something(self, data):
        if self.seen:
            self.replay_one(data.draw(st.sampled_from(self.seen)))

    def replay_one(self, rec):
        """Submit a record seen before again. One accepted before is a
        DUPLICATE; one refused for good stays refused; both change nothing.
        One refused for a missing dependency (ctb.DEPENDENCY) may be accepted
        now that its dependency is in: a change SET_USER refused as
        exchange-not-covered is valid once normal credits are used into the
        account, whoever submits it (the rule must not depend on arrival
        order, or peers would diverge). This model once wrongly demanded that
        every replay be refused; see test_regression_uncovered_change_accepted_once_covered."""
        prev = self.last[rec.id]
        before = _digest(self.st)
        v = self._submit(rec)
        if prev.code != ctb.REJECTED:
            assert v.code == ctb.DUPLICATE, (rec, prev, v)
        elif prev.reason not in ctb.DEPENDENCY:
            assert v.code == ctb.REJECTED, (rec, prev, v)
        if v.code in (ctb.DUPLICATE, ctb.REJECTED):
            assert _digest(self.st) == before

    # -- invariants -------------------------------------------------------

    @invariant()
    def passed_votations_have_a_true_majority(self):
        for kk, v in self.st.kv.items():
            if kk[:1] != b"V" or not ctb.votation_passed(v):
                continue
            e = ctb.votation_epoch(v)
            truth = self.true_electorate[e]
            assert ctb.votation_electorate(v) == truth
            close = R.parse(self.st.get_record(ctb.votation_close_id(v)))
            yes, counted = 0, set()
            for vid in close.fields[5]:
                vote = R.parse(self.st.get_record(vid))
                if vote.fields[0] not in counted:
                    counted.add(vote.fields[0])
                    yes += vote.fields[2] == R.YES
            assert 2 * yes > len(truth), (kk, yes, truth)

    @invariant()
    def accounted_credits_within_real_approvals(self):
        approved = {}
        for kk, v in self.st.kv.items():
            if kk[:1] == b"V" and ctb.votation_subject(v) == R.APPROVE and ctb.votation_passed(v):
                p = self.st.get(b"P" + ctb.votation_about(v))
                approved[ctb.votation_about(v)] = ctb.proposal_total(p)
        by_authority = {}
        for kk, t in self.st.kv.items():
            if kk[:1] == b"T" and ctb.token_kind(t) == R.NORMAL:
                a = ctb.token_authority(t)
                by_authority[a] = by_authority.get(a, 0) + ctb.token_value(t)
        for a, total in by_authority.items():
            assert total <= approved.get(a, 0), (a, total)

    @invariant()
    def accounted_credit_is_never_lost(self):
        for ref, (account, value) in self.credited.items():
            t = self.st.get(b"T" + ref)
            assert ctb.use_account(ctb.effective_use(t)) == account
            assert (self.st.get(b"A" + account) or 0) >= value

    @invariant()
    def change_within_normal_credits_retired(self):
        for kk, o in self.st.kv.items():
            if kk[:1] != b"O":
                continue
            account = kk[1:]
            cover = self.st.get(b"N" + account) or 0
            assert ctb.account_released(o) <= cover
            # the cover exceeds the normal credits the account holds only by
            # tokens a double spend moved away: evidence holds their spender
            held = moved = 0
            for tk, t in self.st.kv.items():
                if tk[:1] != b"T" or ctb.token_kind(t) != R.NORMAL:
                    continue
                if ctb.use_account(ctb.effective_use(t) or [0, 0, 0]) == account:
                    held += ctb.token_value(t)
                elif any(ctb.use_account(u) == account for u in ctb.uses(t)):
                    moved += ctb.token_value(t)
                    assert len(ctb.uses(t)) > 1
            assert cover == held + moved

    @invariant()
    def only_ctb_node_keys_accounted(self):
        for kk, t in self.st.kv.items():
            if kk[:1] == b"T":
                for rid, _ in ctb.receipts(t):
                    node = R.parse(self.st.get_record(rid)).fields[2]
                    assert node in (self.k["common-node"].kid, NODE2.kid)

    @invariant()
    def books_balance(self):
        spent = sum(ctb.token_value(t) for kk, t in self.st.kv.items() if kk[:1] == b"T" and ctb.uses(t))
        assert spent == sum(v for kk, v in self.st.kv.items() if kk[:1] == b"A")
        assert spent == sum(v for kk, v in self.st.kv.items() if kk[:1] == b"Q")

    @invariant()
    def state_is_a_function_of_the_accepted_set(self):
        rnd = random.Random(len(self.accepted))
        for seed in range(REPLAYS):
            last = rnd.choice(self.accepted) if self.accepted else None
            assert _digest(replay(self.accepted, seed * 1000 + len(self.accepted), last)) == _digest(self.st)


ATTACKS = ("self-electorate", "hub-approval", "council-receipt", "steal-set-user", "rogue-open", "vote-twice",
           "claim-account", "mallory-receipt", "hub-admits", "over-cap", "old-epoch", "hub-node")


def _attack_rule(kind):
    def attacker(self, credits):
        self.attack(kind, credits)
    attacker.__name__ = "attacker_" + kind.replace("-", "_")
    return rule(credits=st.integers(1, 10 ** 9))(attacker)


for _kind in ATTACKS:
    setattr(Ledger, "attacker_" + _kind.replace("-", "_"), _attack_rule(_kind))

Ledger.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                                    derandomize=not RANDOM,
                                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
test_ledger_properties = Ledger.TestCase



# -- regressions: cases the exploration found, kept as plain tests -----------

def _check_invariants(m):
    names = [n for n in dir(Ledger) if hasattr(getattr(Ledger, n), "hypothesis_stateful_invariant")]
    assert len(names) == 7
    for n in names:
        getattr(m, n)()


def test_regression_uncovered_change_accepted_once_covered():
    """Failed the property test once (issue 10 branch ledger, second run):
    the shop's change SET_USER was refused as exchange-not-covered; Carlos
    then used a normal token into the exchange account, and a replay of the
    same SET_USER was accepted. That is the ledger's rule (cover is a
    dependency: refusing it for good would make the state depend on arrival
    order), so the model was wrong, not the ledger: the replay is accepted
    once, counted once against the cover, and every invariant holds."""
    m = Ledger()
    m.found()
    m.shop_gives_change(1)
    su = m.seen[-1]
    assert su.type == R.SET_USER
    assert (m.last[su.id].code, m.last[su.id].reason) == (ctb.REJECTED, "exchange-not-covered")
    t = B.issue(m.fp, m._next(), 5, m.proposals[0])
    for r in (t, B.set_user(m.fp, t.fields[0], CARLOS), B.use(CARLOS, t.fields[0], EXCHANGE, EXCHANGE)):
        m._submit(r, must=True)
    m.replay_one(su)
    assert m.last[su.id].code == ctb.ACCEPTED
    account = ids.pack(EXCHANGE)
    assert ctb.account_released(m.st.get(b"O" + account)) == 1
    m.replay_one(su)
    assert m.last[su.id].code == ctb.DUPLICATE
    assert ctb.account_released(m.st.get(b"O" + account)) == 1
    _check_invariants(m)
    m.teardown()
