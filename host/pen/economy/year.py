"""`pen demo --year`: one planning year of a small federation, end to end.

Three consumption councils (localities) and three production councils under
two federations, a village store, and four people: Ana and Ben pay with their
own devices, Carlos has no device and pays from a credit book, Dora only
proposes. The year runs: catalogue and prices are published -> everyone
proposes (individuals, consumption councils, production councils) -> the
two trees are summed and compared -> votations approve the proposals -> the
councils issue credits and pay salaries -> people and councils pay (Carlos
with his password at the store, which changes his big token for change
tokens) -> a council out of credits files a complementary proposal ->
accounts are published -> year end accounts the excess. Keys are made from
fixed phrases and times are fixed, so the CTB is the same on every run (its
state digest is printed); the pictures go to a folder.
"""
import json
from pathlib import Path

from pen import build as B
from pen.accounting import make_receipts
from pen.commands.ctb import balances
from pen.economy.catalogue import check_paid_product
from pen.keys import Signer, seal_seed, unseal_payload
from pen.store import SQLiteCTB
from pen_protocol import ctb, ids, records as R, yearend

from . import accounts as ACC
from . import book as BOOK
from .catalogue import read_csv, work_credits
from .plan import Plan, plot_compare, plot_tree
from .qr import decode_image, parse_token_payload

YEAR = 2027
T0 = 1798761600  # 2027-01-01 UTC
DAY = 86400
CARLOS_PASSWORD = "tortilla de patatas"  # typed at the store; the demo knows it

# specific products of the production councils (catalogue commodity + suffix)
VALVE = "401416000001"
APPLES = "501000000001"
RYE = "501800000001"
WORK = "80111600"  # temporary personnel services: salaries, in medium-effort hours
PIPES = "40171500"  # bought from outside the valley
EXCHANGE = "841215000001"  # the store's exchange account
STORE_SALES = "501800000002"  # the store resells rye bread


class Year:
    def __init__(self, folder, say):
        self.folder = Path(folder)
        self.say = say
        self.k = {n: Signer.from_phrase("year/" + n) for n in (
            "valley", "consumers", "producers", "north", "south", "river", "formosa", "orchard", "bakery", "store",
            "node", "ana", "ben", "carlos", "dora")}
        self.db = SQLiteCTB(self.folder / "ctb.sqlite", clock=lambda: T0)
        self.serial = {}
        self.now = T0
        self.facts = {}

    def ref_serial(self, who, kind):
        n = self.serial.get((who, kind), 0) + 1
        self.serial[(who, kind)] = n
        return n

    def put(self, recs):
        # the node's receipts in the batch's own transaction, as a CTB node stores them
        verdicts, _ = self.db.submit_follow(
            [r.raw for r in recs], lambda state, vs: make_receipts(state, vs, self.k["node"], self.now), self.k["node"])
        return verdicts

    def pub(self, who, kind, subject, content):
        k = self.k[who]
        return B.publication(k, self.ref_serial(who, "U"), kind, subject, content)

    def vote_on(self, owner, subject, about, no=()):
        k = self.k
        op = B.votation_open(k[owner], self.ref_serial(owner, "V"), subject, about, self.electorate, self.now + 7 * DAY)
        votes = [B.vote(k[c], op.fields[0], "no" if c in no else "yes") for c in self.council_names]
        close = B.votation_close(k[owner], op, votes, self.now + 7 * DAY)
        self.put([op] + votes + [close])
        return op.fields[0], 2 * close.fields[2] > len(self.electorate)

    # -- the year -----------------------------------------------------------------

    def found(self):
        k = self.k
        self.say.say("1. The valley's economy: two federations, three localities, three workplaces, a store")
        tree = [("valley", "Valley Federation", "federation", None),
                ("consumers", "Valley Consumers", "federation", "valley"),
                ("producers", "Valley Producers", "federation", "valley"),
                ("north", "North Village", "consumption", "consumers"),
                ("south", "South Village", "consumption", "consumers"),
                ("river", "River Town", "consumption", "consumers"),
                ("formosa", "Formosa Plumbing Coop", "production", "producers"),
                ("orchard", "Valley Orchard", "production", "producers"),
                ("bakery", "Village Bakery", "production", "producers"),
                ("store", "Village Store", "production", "producers")]
        self.council_names = [t[0] for t in tree]
        self.names = {t[0]: t[1] for t in tree}
        self.put([B.council(k[n], name, kind, k[p] if p else None) for n, name, kind, p in tree] +
                 [B.genesis([k[n] for n in self.council_names], "Valley economy", T0)])
        self.electorate = [k[n] for n in self.council_names]
        members = [("valley", "node", "node"),
                   ("north", "ana", "proposer"), ("orchard", "ana", "member"),
                   ("south", "ben", "proposer"), ("bakery", "ben", "member"),
                   ("river", "carlos", "proposer"), ("formosa", "carlos", "member"),
                   ("north", "dora", "proposer")]
        self.put([B.member(k[c], k[m], role) for c, m, role in members])
        self.say.step("10 councils found the economy; Ana, Ben and Carlos each hold two memberships with one key "
                      "(a locality and a workplace), Dora one")

    def publish(self):
        self.say.say("\n2. Publications: the catalogue, the workplaces' products, prices and limits")
        text = (Path(__file__).with_name("catalogue.csv")).read_text()
        recs = [self.pub("valley", "product", packed, content) for _, packed, content in read_csv(text)]
        recs += [self.pub("formosa", "product", ids.pack(VALVE), {1: "Formosa brass valve", 3: "valve"}),
                 self.pub("orchard", "product", ids.pack(APPLES), {1: "Valley Orchard apples", 3: "kg"}),
                 self.pub("bakery", "product", ids.pack(RYE), {1: "Village Bakery rye loaf", 3: "loaf"}),
                 self.pub("store", "product", ids.pack(STORE_SALES), {1: "Village Store bread counter", 3: "loaf"})]
        recs += [self.pub("formosa", "price", ids.pack(VALVE), {1: 150, 2: "valve", 3: YEAR}),
                 self.pub("orchard", "price", ids.pack(APPLES), {1: 20, 2: "kg", 3: YEAR}),
                 self.pub("bakery", "price", ids.pack(RYE), {1: 30, 2: "loaf", 3: YEAR}),
                 self.pub("valley", "price", ids.pack(WORK), {1: work_credits(1), 2: "medium-effort hour"})]
        recs += [self.pub(c, "limit", ids.pack("50100000"), {1: 60, 2: "kg", 3: YEAR})
                 for c in ("north", "south", "river")]
        recs += [self.pub(c, "council", self.k[c].kid, {1: d, 2: "the valley"}) for c, d in (
            ("formosa", "Valves and plumbing"), ("orchard", "Apples"), ("bakery", "Bread"), ("store", "A village shop"))]
        self.put(recs)
        self.say.step("%d catalogue entries, 4 specific products, 4 prices, 3 limits (60 kg of fruit a member), "
                      "4 council pages" % len(read_csv(text)))

    def propose(self):
        self.say.say("\n3. Proposals for %d" % YEAR)
        k = self.k
        self.proposals = {}

        def prop(who, lines):
            r = B.proposal(k[who], self.ref_serial(who, "P"), YEAR, lines)
            self.proposals.setdefault(who, []).append(r)
            return r
        h = work_credits(1)
        recs = [prop("ana", [("50100000", 40, 800), ("50180000", 60, 1800)]),
                prop("ben", [("50100000", 30, 600), ("50180000", 80, 2400)]),
                prop("carlos", [("50100000", 20, 400), ("50180000", 90, 2700)]),
                prop("dora", [("50100000", 50, 1000), ("50180000", 40, 1200)]),
                prop("north", [("40141600", 40, 6000)]),
                prop("south", [("40141600", 30, 4500)]),
                prop("river", [("50180000", 100, 3000)]),
                prop("formosa", [(VALVE, 80, 0), (WORK, 12, 0), (PIPES, 350, 10500), (WORK, 12, 12 * h)]),
                prop("orchard", [(APPLES, 150, 0), (WORK, 12, 0), (WORK, 12, 12 * h)]),
                prop("bakery", [(RYE, 350, 0), (WORK, 12, 0), ("50100000", 20, 400), (WORK, 12, 12 * h)]),
                prop("store", [(WORK, 5, 0), (WORK, 5, 5 * h)])]
        self.put(recs)
        self.say.step("4 people, 3 localities and 4 workplaces proposed; a workplace's outputs (its products and its "
                      "members' hours of work) at 0 credits, its inputs with the credits it needs")
        plan = Plan(self.db, YEAR)
        rows = plan.compare(2)
        for r in rows:
            self.say.step("%-2s %-38s demand %6d  supply %6d  %s" % (r["category"], r["name"][:38], r["demand"],
                                                                   r["supply"], r["verdict"]))
        plot_compare(plan.compare(8), self.folder / "plan-2027.svg", "Plan %d: demand and supply" % YEAR)
        for which in ("consumption", "production"):
            plot_tree(plan, which, 4, self.folder / ("tree-%s-2027.svg" % which))
        self.facts["plan"] = rows
        self.say.step("pictures: plan-2027.svg (demand against supply by commodity), tree-consumption-2027.svg and "
                      "tree-production-2027.svg (the sums at every node of both trees)")

    def approve(self):
        self.say.say("\n4. Votations: Proof of Majority for each council's proposal")
        passed = 0
        for who in ("north", "south", "river", "formosa", "orchard", "bakery", "store"):
            ref, ok = self.vote_on(who, "approve", self.proposals[who][0].fields[0], no=("south",) if who == "formosa"
                                   else ())
            passed += ok
        self.allowance, _ = self.vote_on("store", "exchange", B.exchange_about(self.k["store"], 15000, EXCHANGE))
        self.say.step("%d of 7 proposals approved by a majority of 10 councils; the store may issue 15,000 in change"
                      % passed)

    def issue(self, who, value, user=None, authority=None):
        k = self.k
        auth = authority or self.proposals[who][-1].fields[0]
        t = B.issue(k[who], self.ref_serial(who, "T"), value, auth)
        recs = [t]
        if user is not None:
            recs.append(B.set_user(k[who], t.fields[0], k[user]))
        self.put(recs)
        return t.fields[0]

    def use(self, user, ref, product, account=None, signer=None):
        check_paid_product(self.db, product)  # as every paying front end does: the year buys only catalogued things
        r = B.use(signer or self.k[user], ref, product, account or product)
        self.put([r])
        return r

    def pay(self):
        k = self.k
        self.say.say("\n5. Issuance and payments through the year")
        self.now += 30 * DAY
        # salaries: several tokens so that people can pay without change
        self.wallet = {}
        for who, work in (("ana", "orchard"), ("ben", "bakery")):
            self.wallet[who] = [self.issue(work, v, who) for v in (5000, 2000, 2000, 1000, 1000, 1000)]
        carlos_salary = self.issue("formosa", 12000, "carlos")
        self.say.step("salaries: Ana (orchard) and Ben (bakery) 12,000 each in six tokens; Carlos (Formosa) one "
                      "12,000 token")
        # councils buy: the localities' valves, Formosa's pipes from outside, the bakery's apples
        for c, v in (("north", 6000), ("south", 4500)):
            self.use(c, self.issue(c, v, c), VALVE)
        self.use("formosa", self.issue("formosa", 9000, "formosa"), PIPES)
        self.use("bakery", self.issue("bakery", 400, "bakery"), "50100000", APPLES)
        self.say.step("North and South Village pay Formosa for valves, Formosa pays for copper pipes, the bakery "
                      "pays the orchard for apples")
        # Ana and Ben pay from their own devices
        self.use("ana", self.wallet["ana"][3], APPLES)
        self.use("ana", self.wallet["ana"][1], RYE)
        self.use("ben", self.wallet["ben"][4], APPLES)
        self.use("ben", self.wallet["ben"][2], RYE)
        self.say.step("Ana and Ben pay for apples and bread with their own devices")
        self.credit_book(carlos_salary)

    def credit_book(self, salary):
        """The seed's Example 2, with a printed credit book."""
        k = self.k
        self.now += 30 * DAY
        sealed = seal_seed(k["carlos"].seed, CARLOS_PASSWORD)
        BOOK.make_pdf(self.folder / "carlos-book.pdf", "Carlos", k["carlos"].kid, sealed,
                      [(salary, 12000, self.names["formosa"])], "Valley economy")
        self.say.step("Carlos has no device: Formosa prints his credit book (carlos-book.pdf) with his key "
                      "sealed by his password")
        # at the store: the attendant scans the book; Carlos types his password
        from pypdf import PdfReader
        texts = [t for page in PdfReader(str(self.folder / "carlos-book.pdf")).pages for img in page.images
                 for t in decode_image(img.image)] if _can_read_pdf() else [sealed]
        key_qr = [t for t in texts if t.startswith("pen:sealed:")][0]
        try:
            unseal_payload(key_qr, "tortilla")
            wrong = "accepted"
        except ValueError:
            wrong = "refused"
        carlos = unseal_payload(key_qr, CARLOS_PASSWORD)
        self.use("carlos", salary, EXCHANGE, signer=carlos)
        change = [B.issue(k["store"], self.ref_serial("store", "T"), v, self.allowance, change=True)
                  for v in (5000, 2000, 2000, 2000, 1000)]
        self.put(change)
        self.put([B.set_user(k["store"], c.fields[0], k["carlos"]) for c in change])
        self.use("carlos", change[4].fields[0], STORE_SALES, signer=carlos)
        self.use("carlos", change[3].fields[0], STORE_SALES, signer=carlos)
        del carlos
        self.say.step("the store reads the book's key QR; a wrong password is %s; with his password Carlos signs "
                      "his 12,000 token over to the store's exchange account and gets 12,000 in change tokens, "
                      "then buys 3,000 of bread" % wrong)
        left = [(c.fields[0], c.fields[1], self.names["store"]) for c in change[:3]]
        BOOK.make_pdf(self.folder / "carlos-book-2.pdf", "Carlos", k["carlos"].kid, sealed, left, "Valley economy")
        self.say.step("his change goes into a new book page (carlos-book-2.pdf): %s credits" % "+".join(
            str(v) for _, v, _ in left))
        self.facts["credit_book"] = {"wrong_password": wrong, "change_left": sum(v for _, v, _ in left)}
        if _can_read_pdf():
            from pypdf import PdfReader
            toks = [parse_token_payload(t) for page in PdfReader(str(self.folder / "carlos-book-2.pdf")).pages
                    for img in page.images for t in decode_image(img.image) if t.startswith("pen:token:")]
            self.facts["credit_book"]["tokens_read_back"] = len(toks)

    def complementary(self):
        self.say.say("\n6. Out of credits: a complementary proposal")
        k = self.k
        orchard = self.proposals["orchard"][0].fields[0]
        p = self.db.get(b"P" + orchard)
        self.say.step("Valley Orchard has issued %d of its %d approved credits" % (ctb.proposal_issued(p),
                                                                                    ctb.proposal_total(p)))
        r = B.proposal(k["orchard"], self.ref_serial("orchard", "P"), YEAR, [(WORK, 3, work_credits(3))])
        self.proposals["orchard"].append(r)
        self.put([r])
        _, ok = self.vote_on("orchard", "approve", r.fields[0])
        self.issue("orchard", work_credits(2), "ana")
        self.say.step("it files a complementary proposal for 3 more hours of work, approved: %s; issues 2,000 more "
                      "to Ana" % ok)

    def close_year(self):
        k = self.k
        self.say.say("\n7. Accounts and year end")
        self.now = T0 + 365 * DAY
        # the whole CTB is this one year (change tokens carry no plan year, so a --year roll-up leaves them out)
        rows, total = ACC.rollup(self.db, "", 4)
        self.put([self.pub("valley", "accounts", YEAR, ACC.publication_content(rows, total))])
        for r in rows:
            self.say.step("%-6s %-36s %7d credits" % (r["account"], r["name"][:36], r["credits"]))
        from pen.commands.plan import excess
        closed = {}
        for who in ("north", "south", "river", "formosa", "orchard", "bakery", "store"):
            if who == "formosa":
                self.issue("formosa", 1500)  # issued, never given out: excess
            refs, unissued = excess(self.db, k[who].kid, k[who].public_key, YEAR)
            self.put([self.pub(who, "year-end", YEAR, {1: refs, 2: unissued})])
            closed[who] = (len(refs), unissued)
        excess_credits = ctb.amount(self.db.get(b"A" + ids.pack(yearend.excess_account(YEAR))))
        self.say.step("every council closes %d: %d credits of excess tokens accounted into %s; %d approved credits "
                      "never issued" % (YEAR, excess_credits, yearend.excess_account(YEAR),
                                        sum(u for _, u in closed.values())))
        rows, total = ACC.rollup(self.db, "", 2)
        ACC.plot(rows, self.folder / "accounts-2027.svg", "Accounts %d by segment" % YEAR)
        self.say.step("picture: accounts-2027.svg")
        late = B.issue(k["store"], self.ref_serial("store", "T"), 10, self.proposals["store"][0].fields[0])
        v = ctb.apply_batch(self.db, [late.raw])[1][0]
        self.say.step("a late issue by the store under its closed year is refused: %s" % v.reason)
        self.facts.update(accounts=rows, accounts_total=total, excess=excess_credits, late_issue=v.reason,
                          closed={n: list(c) for n, c in closed.items()})

    def run(self):
        self.found()
        self.publish()
        self.propose()
        self.approve()
        self.pay()
        self.complementary()
        self.close_year()
        b = balances(self.db)
        self.say.say("\nThe CTB %s: %d records, state digest %s" % ("balances" if b["balanced"] else "DOES NOT BALANCE",
                                                                  self.db.count(), self.db.state_digest()[:16]))
        pictures = sorted(p.name for p in self.folder.iterdir() if p.suffix in (".svg", ".pdf"))
        summary = dict(self.facts, balanced=b["balanced"], books=b, records=self.db.count(),
                       state_digest=self.db.state_digest(), files=pictures)
        self.db.close()
        return summary


def _can_read_pdf():
    try:
        import pypdf  # noqa: F401
        return True
    except ImportError:
        return False


def run(folder, say):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.glob("ctb.sqlite*"):
        f.unlink()
    return Year(folder, say).run()


def cmd_year(args, story):
    from pen.cli import PenError
    folder = args.out or "pen-year"
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PenError("cannot make the folder %s: %s" % (folder, e.strerror))
    summary = run(folder, story)
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        print("\nfiles in %s: %s" % (folder, ", ".join(summary["files"])))
    return 0 if summary["balanced"] else 1
