"""pen publish price|limit|council|accounts|list: signed publications, each
checked by the validator against its kind's schema
(pen_protocol/publication.py) and replicated like any record."""
import json

from pen import build as B
from pen.cli import PenError
from pen.commands._common import open_ctb, load_key, submit, fresh_serial, fmt_ref
from pen.economy import accounts as ACC
from pen.commands.plan import MAX_AMOUNT, year
from pen.economy.plan import PlanError
from pen_protocol import ctb, ids, records as R


def register(sub):
    p = sub.add_parser("publish", help="publish prices, limits, council information and accounts")
    s = p.add_subparsers(dest="publish_cmd", metavar="KIND")
    s.required = True
    for kind, qty, helptext in (("price", "--credits", "credits per unit of a product or category"),
                                ("limit", "--quantity", "most a member may propose a year (consumption councils, "
                                                        "federations)")):
        x = s.add_parser(kind, help=helptext)
        x.add_argument("--key", required=True)
        x.add_argument("--product", required=True)
        x.add_argument(qty, type=int, required=True, dest="amount")
        x.add_argument("--unit")
        x.add_argument("--year", type=year)
        x.set_defaults(func=cmd_amount, kind=kind)
    c = s.add_parser("council", help="information about your own council")
    c.add_argument("--key", required=True)
    c.add_argument("--description", required=True)
    c.add_argument("--locality")
    c.set_defaults(func=cmd_council)
    a = s.add_parser("accounts", help="publish the accounts of a year, rolled up from the CTB")
    a.add_argument("--key", required=True)
    a.add_argument("--year", type=year, required=True)
    a.add_argument("--prefix", default="")
    a.add_argument("--level", type=int)
    a.set_defaults(func=cmd_accounts)
    ls = s.add_parser("list", help="publications in the CTB")
    ls.add_argument("--kind", choices=R.PUB_KINDS)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)


def _text(value, what):
    if value is not None and not 0 < len(value.encode()) <= R.MAX_TEXT:
        raise PenError("%s must be 1 to %d bytes" % (what, R.MAX_TEXT))
    return value


def _publish(args, kind, subject, content):
    signer = load_key(args, args.key)
    store = open_ctb(args)
    rec = B.publication(signer, fresh_serial(store, signer.kid, b"U"), kind, subject, content)
    submit(store, [rec])
    return rec


def cmd_amount(args):
    try:
        packed = ids.pack(args.product)
    except ids.ProductIdError as e:
        raise PenError("bad product id %r: %s" % (args.product, e))
    if not 0 <= args.amount <= MAX_AMOUNT:
        raise PenError("the %s must be a whole number from 0 to 2^64-1" % ("price" if args.kind == "price" else "limit"))
    content = {1: args.amount}
    if _text(args.unit, "--unit"):
        content[2] = args.unit
    if args.year is not None:
        content[3] = args.year
    rec = _publish(args, args.kind, packed, content)
    print("published %s %s: %d%s (%s)" % (args.kind, args.product, args.amount,
                                          " per " + args.unit if args.unit else "", fmt_ref(rec.fields[0])))


def cmd_council(args):
    signer = load_key(args, args.key)
    content = {1: _text(args.description, "--description")}
    if _text(args.locality, "--locality"):
        content[2] = args.locality
    rec = _publish(args, "council", signer.kid, content)
    print("published council information (%s)" % fmt_ref(rec.fields[0]))


def cmd_accounts(args):
    if args.prefix:
        try:
            ids.pack(args.prefix)
        except ids.ProductIdError as e:
            raise PenError("bad --prefix %r: %s" % (args.prefix, e))
    rows, total = ACC.rollup(open_ctb(args), args.prefix, args.level, args.year)
    try:
        content = ACC.publication_content(rows, total)
    except PlanError as e:
        raise PenError("%s for %d" % (e, args.year))
    rec = _publish(args, "accounts", args.year, content)
    print("published the %d accounts of %d: %d accounts, %d credits (%s)" % (
        args.year, args.year, len(rows), total, fmt_ref(rec.fields[0])))


def cmd_list(args):
    from pen.node.core import _jsonable  # the node's JSON form of state values (bytes as hex)
    store = open_ctb(args)
    rows = []
    for k, u in store.state_prefix(b"U"):
        kind = R.PUB_KINDS[ctb.publication_kind(u)]
        if args.kind and kind != args.kind:
            continue
        subj = ctb.publication_subject(u)
        if isinstance(subj, bytes) and kind not in ("council",):
            try:
                subj = ids.unpack(subj)
            except ids.ProductIdError:
                subj = subj.hex()
        rows.append({"ref": fmt_ref(k[1:]), "kind": kind, "subject": _jsonable(subj), "content": _jsonable(ctb.publication_content(u))})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        print("%-16s %-9s %-14s %s" % (r["ref"], r["kind"], r["subject"], json.dumps(r["content"])))
