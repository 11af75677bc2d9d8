"""pen council create|list|certify, pen proposal create|list"""
from pen import build as B
from pen.cli import PenError
from pen_protocol import ctb, ids, records as R
from pen.commands._common import (open_ctb, load_key, keyring, submit, resolve_kid, fresh_serial, fmt_ref)

STATUS = ("registered", "admitted", "dismembered")


def register(sub):
    p = sub.add_parser("council", help="register, list and certify councils")
    s = p.add_subparsers(dest="council_cmd", metavar="ACTION")
    s.required = True
    c = s.add_parser("create", help="register a council (self-signed by its key)")
    c.add_argument("--key", required=True, help="the council's key name")
    c.add_argument("--name", required=True)
    c.add_argument("--kind", required=True, choices=R.KINDS)
    c.add_argument("--parent", help="parent federation (key name, kid or council name)")
    c.set_defaults(func=cmd_create)
    ls = s.add_parser("list", help="list councils in the CTB")
    ls.set_defaults(func=cmd_list)
    ce = s.add_parser("certify", help="certify a member key (role member/proposer/node/register)")
    ce.add_argument("--key", required=True, help="the certifying council's key name")
    ce.add_argument("--member", required=True, help="member key name, contact, 64-hex public key or pen:key: payload")
    ce.add_argument("--role", default="member", choices=R.ROLES)
    ce.set_defaults(func=cmd_certify)

    p = sub.add_parser("proposal", help="economic proposals of a council")
    s = p.add_subparsers(dest="proposal_cmd", metavar="ACTION")
    s.required = True
    c = s.add_parser("create", help="a proposal: lines of product id x quantity x credits")
    c.add_argument("--key", required=True)
    c.add_argument("--year", type=int, required=True)
    c.add_argument("--line", action="append", required=True, metavar="PRODUCT:QTY:CREDITS")
    c.set_defaults(func=cmd_propose)
    ls = s.add_parser("list", help="list proposals")
    ls.set_defaults(func=cmd_proposals)


def cmd_create(args):
    signer = load_key(args, args.key)
    store = open_ctb(args)
    parent = resolve_kid(args, store, args.parent) if args.parent else None
    rec = B.council(signer, args.name, args.kind, parent)
    submit(store, [rec])
    print("council %s registered, kid %s (admitted by genesis or an admit votation)" % (args.name, signer.kid.hex()))


def cmd_list(args):
    store = open_ctb(args)
    rows = list(store.state_prefix(b"C"))
    if not rows:
        print("no councils in this CTB")
    for k, c in rows:
        parent = ctb.council_parent(c).hex() if ctb.council_parent(c) else "-"
        print("%s  %-28s %-12s %-11s parent %s" % (k[1:].hex(), ctb.council_name(c), R.KINDS[ctb.council_kind(c)],
                                                   STATUS[ctb.council_status(c)], parent))


def cmd_certify(args):
    signer = load_key(args, args.key)
    store = open_ctb(args)
    m = args.member
    try:
        pk = keyring(args).public_key(m)  # a key name, contact, 64 hex or pen:key: payload
    except (KeyError, ValueError) as e:
        raise PenError(str(e).strip('"'))
    rec = B.member(signer, pk, args.role)
    submit(store, [rec])
    print("certified %s as %s of %s" % (m, args.role, signer.kid.hex()))


def _line(text):
    from pen.commands._common import in_range
    try:
        p, q, c = text.split(":")
        ids.pack(p)
        q, c = int(q), int(c)
    except (ValueError, ids.ProductIdError):
        raise PenError("bad line %r: expected PRODUCT:QTY:CREDITS with a 2-12 digit product id" % text)
    return p, in_range("the quantity in line %r" % text, q, "units"), in_range("the credits in line %r" % text, c,
                                                                                "credits")


def cmd_propose(args):
    signer = load_key(args, args.key)
    store = open_ctb(args)
    lines = [_line(x) for x in args.line]
    rec = B.proposal(signer, fresh_serial(store, signer.kid, b"P"), args.year, lines)
    submit(store, [rec])
    print("proposal %s: %d credits over %d lines (put it to a votation with: pen votation open --subject approve "
          "--about %s)" % (fmt_ref(rec.fields[0]), sum(x[2] for x in lines), len(lines), fmt_ref(rec.fields[0])))


def cmd_proposals(args):
    store = open_ctb(args)
    for k, p in store.state_prefix(b"P"):
        print("%s  year %d  total %d  issued %d  %s" % (
            fmt_ref(k[1:]), ctb.proposal_year(p), ctb.proposal_total(p), ctb.proposal_issued(p),
            "approved" if ctb.proposal_approved(p) else "not approved"))
