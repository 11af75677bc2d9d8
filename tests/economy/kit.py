"""A small federation on an in-memory CTB for the economy's rule tests."""
from pen import build as B
from pen.keys import Signer
from pen_protocol import ctb, records as R

from ledgerkit import accept, rejected, snapshot  # noqa: F401  (the economy's tests import them from here)


DAY = 86400


def mid_year(year):
    """A unix time in the middle of year (UTC)."""
    return int((year - 1970) * 365.2425 * DAY) + 180 * DAY




class Fed:
    """fed (federation), cons (consumption), prod and mill (production),
    persons ana and bo; all councils founded together."""

    def __init__(self):
        self.k = {n: Signer.from_phrase("eco-test/" + n) for n in ("fed", "cons", "prod", "mill", "ana", "bo")}
        self.st = ctb.MemoryState()
        self.led = ctb.Ledger(self.st)
        k = self.k
        self.fed = k["fed"]
        accept(self.led, B.council(k["fed"], "Fed", "federation"),
               B.council(k["cons"], "Cons", "consumption", k["fed"]),
               B.council(k["prod"], "Prod", "production", k["fed"]),
               B.council(k["mill"], "Mill", "production", k["fed"]),
               B.genesis([k["fed"], k["cons"], k["prod"], k["mill"]], "Test economy", 1))
        self.electorate = [k["fed"], k["cons"], k["prod"], k["mill"]]
        self._serial = 0

    def serial(self):
        self._serial += 1
        return self._serial

    def approve(self, owner, prop):
        """A votation inside the proposal's year (deadline and close)."""
        op = B.votation_open(owner, self.serial(), "approve", prop.fields[0], self.electorate,
                             mid_year(prop.fields[1]) + 30 * DAY)
        votes = [B.vote(s, op.fields[0], "yes") for s in self.electorate[:3]]
        accept(self.led, op, *votes)
        accept(self.led, B.votation_close(owner, op, votes, mid_year(prop.fields[1])))

    def plan(self, council, year, lines, approve=True):
        prop = B.proposal(council, self.serial(), year, lines)
        accept(self.led, prop)
        if approve:
            self.approve(council, prop)
        return prop

    def token(self, council, prop, value, user=None):
        t = B.issue(council, self.serial(), value, prop.fields[0])
        accept(self.led, t)
        if user is not None:
            accept(self.led, B.set_user(council, t.fields[0], user))
        return t

    def state(self, prefix, key):
        return self.st.get(prefix + key)


def tokens_state(fed, t):
    return ctb.token_state(fed.st.get(b"T" + t.fields[0]))
