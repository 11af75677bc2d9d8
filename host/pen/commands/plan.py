"""pen plan propose|sums|compare|status|close: participatory planning over
the consumption (locality) and production (federation) trees, and year end
(see pen/economy/plan.py and pen_protocol/yearend.py)."""
import argparse
import json

from pen import build as B
from pen.cli import PenError
from pen.commands._common import open_ctb, load_key, submit, fresh_serial, fmt_ref
from pen.economy import plan as PL
from pen_protocol import ctb, ids, publication as PUB, records as R, yearend


def register(sub):
    p = sub.add_parser("plan", help="participatory planning: proposals, sums over both trees, year end")
    s = p.add_subparsers(dest="plan_cmd", metavar="ACTION")
    s.required = True
    pr = s.add_parser("propose", help="a consumption or production proposal (a council or an individual proposer)")
    pr.add_argument("--key", required=True)
    pr.add_argument("--year", type=year, required=True)
    pr.add_argument("--line", action="append", required=True, metavar="PRODUCT:QTY:CREDITS",
                    help="production councils: CREDITS 0 for an output they offer")
    pr.add_argument("--complementary", action="store_true", help="a further proposal for the same year")
    pr.set_defaults(func=cmd_propose)
    su = s.add_parser("sums", help="sums of one tree by product category, at every node")
    su.add_argument("--year", type=year, required=True)
    su.add_argument("--tree", choices=("consumption", "production"), required=True)
    su.add_argument("--level", type=int, default=2, help="category digits (2 segment ... 8 commodity)")
    su.add_argument("--json", action="store_true")
    su.add_argument("--plot", metavar="FILE", help="write a picture of the tree's sums (.svg or .png)")
    su.set_defaults(func=cmd_sums)
    co = s.add_parser("compare", help="where consumption and production disagree, by category")
    co.add_argument("--year", type=year, required=True)
    co.add_argument("--level", type=int, default=2)
    co.add_argument("--under", default="", help="only categories under this one")
    co.add_argument("--json", action="store_true")
    co.add_argument("--plot", metavar="FILE", help="write a picture (.svg or .png)")
    co.set_defaults(func=cmd_compare)
    st = s.add_parser("status", help="a council's approved, issued and remaining credits")
    st.add_argument("--key", required=True)
    st.add_argument("--year", type=year, required=True)
    st.set_defaults(func=cmd_status)
    cl = s.add_parser("close", help="year end: account the council's excess tokens into its special account")
    cl.add_argument("--key", required=True)
    cl.add_argument("--year", type=year, required=True)
    cl.set_defaults(func=cmd_close)


MAX_AMOUNT = 2 ** 64 - 1  # the largest CBOR unsigned integer a record carries


def check_level(level):
    """Roll-ups follow the catalogue: UNSPSC's levels, then digits into a
    producer's own suffix (odd prefixes of the 8 digits name no category)."""
    if level is not None and not (level in PUB.LEVELS or PUB.CATEGORY_DIGITS < level <= ids.MAX_DIGITS):
        raise PenError("--level must be a catalogue level: 2, 4, 6 or 8 digits (segment, family, class, "
                       "commodity), or 9 to %d (into a producer's own suffix), not %d" % (ids.MAX_DIGITS, level))
    return level


def year(text):
    """--year: a calendar year, as the validator takes them."""
    try:
        y = int(text)
    except ValueError:
        y = None
    if y is None or not 1900 <= y <= 9999:
        raise argparse.ArgumentTypeError("a year is 1900 to 9999, not %r" % text)
    return y


def check_plot(path):
    if path and not str(path).lower().endswith((".svg", ".png")):
        raise PenError("--plot writes a .svg or .png file, not %s" % path)


def _line(text):
    try:
        p, q, c = text.split(":")
        ids.pack(p)
        q, c = int(q), int(c)
        if not (0 <= q <= MAX_AMOUNT and 0 <= c <= MAX_AMOUNT):
            raise ValueError
        return p, q, c
    except (ValueError, ids.ProductIdError):
        raise PenError("bad line %r: expected PRODUCT:QTY:CREDITS (a 2-12 digit product id, whole numbers from 0 to "
                       "2^64-1)" % text)


def cmd_propose(args):
    signer = load_key(args, args.key)
    lines = [_line(x) for x in args.line]
    store = open_ctb(args)
    try:
        plan = PL.check_proposal(store, signer.kid, args.year, lines, args.complementary)
    except PL.PlanError as e:
        raise PenError(str(e))
    rec = B.proposal(signer, fresh_serial(store, signer.kid, b"P"), args.year, lines)
    submit(store, [rec])
    council, person = plan.home_of(signer.kid)
    what = "consumption" if plan.councils[council][2] != R.PRODUCTION else "production"
    print("%s%s proposal %s for %d: %d lines, %d credits%s" % (
        "complementary " if args.complementary else "", what, fmt_ref(rec.fields[0]), args.year, len(lines),
        sum(c for _, _, c in lines),
        " (summed into %s)" % plan.councils[council][1] if person else
        " (put it to the vote with: pen votation open --subject approve --about %s)" % fmt_ref(rec.fields[0])))


def _name(plan, kid):
    if kid == PL.ECONOMY:
        return "the economy"
    return plan.councils[kid][1]


def cmd_sums(args):
    check_level(args.level)
    check_plot(args.plot)
    plan = PL.Plan(open_ctb(args), args.year)
    tree, sums = plan.sums(args.tree, args.level)
    if args.plot:
        if not any(sums[PL.ECONOMY].values()):
            raise PenError("no %s proposals for %d: nothing to draw" % (args.tree, args.year))
        try:
            PL.plot_tree(plan, args.tree, args.level, args.plot)
        except PL.PlanError as e:
            raise PenError(str(e))
    if args.json:
        out = []
        for node in [PL.ECONOMY] + sorted(tree):
            for (side, cat), (q, c) in sorted(sums[node].items()):
                out.append({"node": _name(plan, node), "kid": None if node == PL.ECONOMY else node.hex(),
                            "side": side, "category": cat, "quantity": q, "credits": c})
        print(json.dumps(out, indent=1))
        return 0
    print("%s tree, %d, by %d-digit category" % (args.tree, args.year, args.level))
    for depth, name, rows in PL.tree_rows(plan, args.tree, args.level):
        totals = {}
        for (side, _), (_, c) in rows.items():
            totals[side] = totals.get(side, 0) + c
        print("%s%s: %s" % ("  " * depth, name, ", ".join("%s %d credits" % kv for kv in sorted(totals.items()))
                             or "nothing proposed"))
        for (side, cat), (q, c) in sorted(rows.items()):
            print("%s  %-7s %-12s %-32s qty %8d  %9d credits" % ("  " * depth, side, cat,
                                                                  plan.catalogue.name(cat)[:32], q, c))


def cmd_compare(args):
    check_level(args.level)
    check_plot(args.plot)
    plan = PL.Plan(open_ctb(args), args.year)
    rows = plan.compare(args.level, args.under)
    if args.json:
        print(json.dumps({"year": args.year, "level": args.level, "rows": rows,
                          "unpriced_outputs": sorted(plan.unpriced)}, indent=1))
    else:
        print("%d plan, by %d-digit category: demand (consumers + producers' inputs) against supply, in credits" % (
            args.year, args.level))
        print("%-12s %-30s %10s %10s %10s %10s  %s" % ("category", "name", "consumers", "inputs", "supply",
                                                       "difference", "verdict"))
        for r in rows:
            print("%-12s %-30s %10d %10d %10d %+10d  %s" % (r["category"], r["name"][:30], r["consumers"], r["inputs"],
                                                            r["supply"], r["difference"], r["verdict"]))
        if plan.unpriced:
            print("outputs with no published price (valued 0): " + ", ".join(sorted(plan.unpriced)))
    if args.plot:
        if not rows:
            raise PenError("no proposals for %d: nothing to draw" % args.year)
        try:
            PL.plot_compare(rows, args.plot, "Plan %d: demand and supply by category" % args.year)
        except PL.PlanError as e:
            raise PenError(str(e))
        if not args.json:
            print("picture: %s" % args.plot)


def cmd_status(args):
    signer = load_key(args, args.key)
    plan = PL.Plan(open_ctb(args), args.year)
    s = plan.council_status(signer.kid)
    print("%d: %d proposals (%d complementary), %d credits approved, %d issued, %d left" % (
        args.year, len(s["proposals"]), s["complementary"], s["approved"], s["issued"], s["left"]))
    if s["approved"] and s["left"] == 0:
        print("out of credits: file a complementary proposal (pen plan propose --complementary) and put it to the vote")


def excess(store, kid, council_key, year):
    """The council's excess tokens of year (refs) and its unissued credits."""
    props = {k[1:]: p for k, p in store.state_prefix(b"P")
             if R.ref_kid(k[1:]) == kid and ctb.proposal_year(p) == year}
    refs = []
    for k, t in store.state_prefix(b"T" + kid):
        if ctb.token_kind(t) == R.NORMAL and ctb.token_authority(t) in props and not ctb.uses(t) \
                and ctb.user(t) in (None, council_key):
            refs.append(k[1:])
    unissued = sum(ctb.proposal_total(p) - ctb.proposal_issued(p) for p in props.values() if ctb.proposal_approved(p))
    return sorted(refs), unissued


def cmd_close(args):
    signer = load_key(args, args.key)
    store = open_ctb(args)
    if store.get(b"C" + signer.kid) is None:
        raise PenError("%s is not a council key: a council closes its year" % args.key)
    refs, unissued = excess(store, signer.kid, signer.public_key, args.year)
    # the validator takes a year end only if it lists every excess token (yearend.py); one publication
    # lists at most MAX_LIST, so more go in parts, in one batch, the last one closing the year
    recs = []
    for i in range(0, max(len(refs), 1), R.MAX_LIST):
        content = {1: refs[i:i + R.MAX_LIST], 2: unissued}
        if i + R.MAX_LIST < len(refs):
            content[3] = 1
        recs.append(B.publication(signer, fresh_serial(store, signer.kid, b"U"), "year-end", args.year, content))
    submit(store, recs)
    value = sum(store.get(b"T" + r)[1] for r in refs)
    print("year %d closed: %d excess tokens (%d credits) accounted into %s%s; %d approved credits never issued" % (
        args.year, len(refs), value, yearend.excess_account(args.year),
        " in %d year-end publications" % len(recs) if len(recs) > 1 else "", unissued))
