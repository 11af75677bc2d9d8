"""Participatory planning: the seed's two trees and where they disagree.

"The information of the production and consumption are organized in two tree
structures. It is necessary to be able to sum up the the production and
consumption. It does NOT represent a hierarchy of power."

- The consumption tree follows locality: individuals (member keys with the
  role proposer) under their consumption council, consumption councils under
  their parent federations.
- The production tree follows the federations of production councils.
A proposal's lines are [product, quantity, credits]. In a consumption
proposal every line is demand. In a production proposal a line with credits
is an input the council needs (credits it may issue once approved); a line
with zero credits is an output it offers (it issues nothing for what it
makes), valued at the published price of the product or its nearest priced
category. Sums are by product category at any level (2, 4, 6, 8 digits or
the full id) and at any node of either tree; the comparison puts demand
(consumers plus producers' inputs) against supply (producers' outputs).

A council's first proposal of a year is its plan; later ones are
complementary proposals ("In the case when a council runs out of credits
before the year has ended, it would have do a complementary proposal").
"""
from pen_protocol import ctb, ids, membership, publication as PUB, records as R

from .catalogue import Catalogue, CatalogueError, state_items

ECONOMY = b"\xff" * 4  # the root above parentless federations (no council has it)
BALANCED_WITHIN = 0.05  # a category whose supply is within 5 % of demand is in balance


class PlanError(ValueError):
    pass


def all_records(store, rtype):
    if hasattr(store, "records"):
        return [R.parse(raw) for _, raw in store.records(types=[rtype])]
    return [r for r in (R.parse(raw) for raw in store.recs.values()) if r.type == rtype]


class Line:
    __slots__ = ("council", "proposer", "proposal", "product", "quantity", "credits", "side")

    def __init__(self, council, proposer, proposal, product, quantity, credits, side):
        self.council, self.proposer, self.proposal = council, proposer, proposal
        self.product, self.quantity, self.credits, self.side = product, quantity, credits, side


DEMAND = "demand"  # consumers
INPUT = "input"  # producers' inputs
OUTPUT = "output"  # producers' offers


class Plan:
    """The plan of one year, read from a CTB."""

    def __init__(self, store, year):
        self.year = year
        self.store = store
        self.councils = {k[1:]: c for k, c in state_items(store, b"C")}
        self.catalogue = Catalogue.from_ctb(store)
        self.prices = _prices(store)
        self.proposals = {k[1:]: p for k, p in state_items(store, b"P")}
        self.lines = []
        self.unpriced = set()
        for rec in all_records(store, R.PROPOSAL):
            ref, y, lines = rec.fields
            if y != year or ref not in self.proposals:
                continue
            kid = R.ref_kid(ref)
            council, proposer = self.home_of(kid)
            if council is None:
                continue
            kind = self.councils[council][2]
            for packed, qty, credits in lines:
                pid = ids.unpack(packed)
                if kind == R.PRODUCTION:
                    side = INPUT if credits else OUTPUT
                    if side == OUTPUT:
                        credits = self.value(pid, qty, council)
                else:
                    side = DEMAND
                self.lines.append(Line(council, proposer, ref, pid, qty, credits, side))

    def home_of(self, kid):
        """(council, individual or None) a proposal's signer belongs to."""
        if kid in self.councils:
            return kid, None
        for council, role in membership.of(self.store, kid):
            c = self.councils.get(council)
            if role == R.ROLE_PROPOSER and c and ctb.council_kind(c) == R.CONSUMPTION:
                return council, kid
        return None, None

    def value(self, pid, qty, council):
        price = price_of(self.prices, pid, self.year, council)
        if price is None:
            self.unpriced.add(pid)
            return 0
        return qty * price

    # -- the trees --------------------------------------------------------

    def tree(self, which):
        """{node: parent} for the consumption or production tree."""
        want = R.CONSUMPTION if which == "consumption" else R.PRODUCTION
        nodes = {}
        for kid, c in self.councils.items():
            if ctb.council_kind(c) != want:
                continue
            while kid is not None and kid not in nodes:
                parent = ctb.council_parent(self.councils[kid])
                nodes[kid] = parent if parent is not None else ECONOMY
                kid = parent
        return nodes

    def sums(self, which, level=None):
        """{node: {category: [quantity, credits]}} with every node holding
        its whole subtree, the ECONOMY root included."""
        tree = self.tree(which)
        sides = (DEMAND,) if which == "consumption" else (INPUT, OUTPUT)
        out = {n: {} for n in list(tree) + [ECONOMY]}
        for ln in self.lines:
            if ln.side not in sides or ln.council not in tree:
                continue
            cat = category(ln.product, level)
            node = ln.council
            while True:
                row = out[node].setdefault((ln.side, cat), [0, 0])
                row[0] += ln.quantity
                row[1] += ln.credits
                if node == ECONOMY:
                    break
                node = tree[node]
        return tree, out

    def compare(self, level=2, under=""):
        """Rows {category, name, consumers, inputs, demand, supply, difference,
        verdict} by category at level, demand against supply in credits."""
        rows = {}
        for ln in self.lines:
            if not ln.product.startswith(under):
                continue
            cat = category(ln.product, level)
            r = rows.setdefault(cat, {"category": cat, "name": self.catalogue.name(cat), DEMAND: 0, INPUT: 0,
                                      OUTPUT: 0})
            r[ln.side] += ln.credits
        out = []
        for cat in sorted(rows):
            r = rows[cat]
            demand = r[DEMAND] + r[INPUT]
            supply = r[OUTPUT]
            diff = supply - demand
            if demand == supply or (demand and abs(diff) <= BALANCED_WITHIN * demand):
                verdict = "balanced"
            elif diff < 0:
                verdict = "short by %d" % -diff
            else:
                verdict = "surplus %d" % diff
            out.append({"category": cat, "name": r["name"], "consumers": r[DEMAND], "inputs": r[INPUT],
                        "demand": demand, "supply": supply, "difference": diff, "verdict": verdict})
        return out

    def council_status(self, kid):
        """A council's approved credits this year, issued so far, left, and
        whether it needs a complementary proposal."""
        refs = sorted(r for r in self.proposals if R.ref_kid(r) == kid and self.proposals[r][3] == self.year)
        approved = sum(self.proposals[r][0] for r in refs if self.proposals[r][1])
        issued = sum(self.proposals[r][2] for r in refs)
        return {"proposals": refs, "approved": approved, "issued": issued, "left": approved - issued,
                "complementary": max(0, len(refs) - 1)}


def category(pid, level):
    return pid if level is None or level >= len(pid) else pid[:level]


def _prices(store):
    """{product id: [(year or None, publisher, record id, credits)]}"""
    out = {}
    for k, u in state_items(store, b"U"):
        if ctb.publication_kind(u) == PUB.PRICE:
            c = ctb.publication_content(u)
            out.setdefault(ids.unpack(ctb.publication_subject(u)), []).append(
                (c.get(3), R.ref_kid(k[1:]), ctb.publication_id(u), c[1]))
    return out


def price_of(prices, pid, year, council=None):
    """The price of pid or its nearest priced category: the producing
    council's own price first, a price for this year before an undated one,
    then the lowest record id (the same answer on every node)."""
    for n in range(len(pid), ids.MIN_DIGITS - 1, -1):
        cands = [p for p in prices.get(pid[:n], []) if p[0] in (year, None)]
        if cands:
            cands.sort(key=lambda p: (p[1] != council, p[0] is None, p[2]))
            return cands[0][3]
    return None


def check_proposal(store, kid, year, lines, complementary):
    """What `pen plan propose` refuses before anything is signed: products
    the catalogue does not know or (for consumers) more general than an
    analogue category; a second plan for a year that is not marked
    complementary; a complementary one with no approved plan to complement;
    an individual over a published limit. lines: [(product, qty, credits)]."""
    plan = Plan(store, year)
    council, person = plan.home_of(kid)
    if council is None:
        raise PlanError("%s is neither a council nor a proposer of a consumption council" % kid.hex())
    consumer = ctb.council_kind(plan.councils[council]) != R.PRODUCTION
    for pid, qty, credits in lines:
        try:
            plan.catalogue.check_line(pid, consumer)
        except CatalogueError as e:
            raise PlanError(str(e))
        if consumer and credits == 0:
            raise PlanError("line %s: a consumption line states the credits it needs" % pid)
    mine = [r for r, p in plan.proposals.items() if R.ref_kid(r) == kid and ctb.proposal_year(p) == year]
    if mine and not complementary:
        raise PlanError("%s already proposed for %d: a further proposal is a complementary one (add "
                        "--complementary)" % (kid.hex(), year))
    if complementary:
        if not mine:
            raise PlanError("nothing to complement: no proposal for %d yet" % year)
        if person is None and not any(ctb.proposal_approved(plan.proposals[r]) for r in mine):
            raise PlanError("nothing to complement: no approved proposal for %d yet" % year)
    if person is not None:
        _check_limits(store, plan, council, kid, year, lines)
    return plan


def limits_for(store, plan, council, year):
    """{category: (quantity, publisher)} published by the council or a
    federation above it, for this year or undated; the smallest wins."""
    chain = []
    k = council
    while k is not None and k in plan.councils:
        chain.append(k)
        k = ctb.council_parent(plan.councils[k])
    out = {}
    for key, u in state_items(store, b"U"):
        pub = R.ref_kid(key[1:])
        c = ctb.publication_content(u)
        if ctb.publication_kind(u) == PUB.LIMIT and pub in chain and c.get(3) in (year, None):
            cat = ids.unpack(ctb.publication_subject(u))
            if cat not in out or c[1] < out[cat][0]:
                out[cat] = (c[1], pub)
    return out


def _check_limits(store, plan, council, kid, year, lines):
    lim = limits_for(store, plan, council, year)
    already = [ln for ln in plan.lines if ln.proposer == kid]
    for cat, (limit, pub) in sorted(lim.items()):
        total = sum(ln.quantity for ln in already if ln.product.startswith(cat))
        total += sum(q for p, q, _ in lines if p.startswith(cat))
        if total > limit:
            raise PlanError("over the limit for %s (%s): %d proposed this year, the limit is %d a member" % (
                cat, plan.catalogue.name(cat), total, limit))


def plot_compare(rows, path, title):
    """A picture of demand against supply by category (SVG or PNG by the
    file's extension)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 0.5 * max(4, len(rows)) + 1.5))
    labels = ["%s %s" % (r["category"], r["name"][:28]) for r in rows]
    y = list(range(len(rows)))
    cons = [r["consumers"] for r in rows]
    inp = [r["inputs"] for r in rows]
    sup = [r["supply"] for r in rows]
    ax.barh([v - 0.2 for v in y], cons, height=0.38, color="#4c72b0", label="consumers' demand")
    ax.barh([v - 0.2 for v in y], inp, left=cons, height=0.38, color="#8fa8d6", label="producers' inputs")
    ax.barh([v + 0.2 for v in y], sup, height=0.38, color="#55a868", label="producers' supply")
    for i, r in enumerate(rows):
        if r["verdict"] != "balanced":
            ax.annotate(r["verdict"], (max(r["demand"], r["supply"]), i), xytext=(4, -3),
                        textcoords="offset points", fontsize=8, color="#c44e52")
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("credits")
    ax.set_title(title)
    ax.margins(x=0.18)  # room for the verdicts
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    save(fig, path)


def tree_rows(plan, which, level):
    """[(depth, node name, {(side, category): [quantity, credits]})] in tree order."""
    tree, sums = plan.sums(which, level)
    children = {}
    for n, parent in tree.items():
        children.setdefault(parent, []).append(n)
    out = []

    def walk(node, depth):
        name = "the economy" if node == ECONOMY else plan.councils[node][1]
        out.append((depth, name, sums[node]))
        for ch in sorted(children.get(node, []), key=lambda k: plan.councils[k][1]):
            walk(ch, depth + 1)
    walk(ECONOMY, 0)
    return out


def plot_tree(plan, which, level, path):
    """One bar per node of a tree (indented by depth), stacked by category:
    the sums every node holds for its whole subtree."""
    plt = pyplot()
    rows = tree_rows(plan, which, level)
    cats = sorted({k for _, _, d in rows for k in d})
    fig, ax = plt.subplots(figsize=(10, 0.45 * max(4, len(rows)) + 1.5))
    y = list(range(len(rows)))
    left = [0] * len(rows)
    colours = plt.get_cmap("tab20")
    for i, key in enumerate(cats):
        vals = [d.get(key, [0, 0])[1] for _, _, d in rows]
        side, cat = key
        ax.barh(y, vals, left=left, color=colours(i % 20), hatch="//" if side == INPUT else None,
                label="%s %s %s" % (side, cat, plan.catalogue.name(cat)[:24]))
        left = [a + b for a, b in zip(left, vals)]
    ax.set_yticks(y)
    ax.set_yticklabels(["\u00b7 " * d + n for d, n, _ in rows], fontsize=8)  # a dot per level below the root
    ax.invert_yaxis()
    ax.set_xlabel("credits")
    ax.set_title("%s tree %d, by %d-digit category" % (which.capitalize(), plan.year, level))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    save(fig, path)


def pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlanError("pictures need matplotlib: pip install 'pen[economy]'")
    return plt


def save(fig, path):
    import matplotlib.pyplot as plt
    path = str(path)
    if not path.lower().endswith((".svg", ".png")):
        plt.close(fig)
        raise PlanError("a picture is written as .svg or .png, not %s" % path)
    # a fixed date in the SVG metadata keeps the file the same from run to run
    fig.savefig(path, metadata={"Date": None} if path.lower().endswith(".svg") else None)
    plt.close(fig)
