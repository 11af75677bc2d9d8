"""pen token issue|assign|use|check|show|export"""
import time

from pen import build as B
from pen.cli import PenError
from pen.economy.catalogue import CatalogueError, check_paid_product
from pen_protocol import check, ctb, ids, records as R
from pen.commands._common import (open_ctb, load_key, submit, fresh_serial, fmt_ref, parse_ref, keyring, in_range,
                                  write_bundle, read_bundle)


def register(sub):
    p = sub.add_parser("token", help="credit tokens: issue, assign a user, use, check offline")
    s = p.add_subparsers(dest="token_cmd", metavar="ACTION")
    s.required = True
    i = s.add_parser("issue", help="issue a token under an approved proposal or exchange allowance")
    i.add_argument("--key", required=True, help="issuing council's key name")
    i.add_argument("--value", type=int, required=True)
    g = i.add_mutually_exclusive_group(required=True)
    g.add_argument("--proposal", help="approved proposal ref")
    g.add_argument("--allowance", help="exchange-allowance votation ref (issues a change token)")
    i.set_defaults(func=cmd_issue)
    a = s.add_parser("assign", help="name the token's user (signed by the issuer): ISSUED -> USABLE")
    a.add_argument("--key", required=True)
    a.add_argument("--token", required=True)
    a.add_argument("--user", required=True, help="user key name or 64-hex public key")
    a.set_defaults(func=cmd_assign)
    u = s.add_parser("use", help="spend a token (signed by its user): USABLE -> USED")
    u.add_argument("--key", required=True, help="the user's key name")
    u.add_argument("--token", required=True)
    u.add_argument("--product", required=True, help="product id bought (2-12 digits)")
    u.add_argument("--account", required=True, help="receiving account (a product id)")
    u.set_defaults(func=cmd_use)
    c = s.add_parser("check", help="valid / invalid / indeterminable, from this CTB copy")
    c.add_argument("--token", required=True)
    c.add_argument("--chain", help="record file the payer presents (token chain, maybe the USE)")
    c.add_argument("--live", action="store_true", help="this CTB is the live CTB, not an offline copy")
    c.add_argument("--spent-from", metavar="PORT",
                   help="ask the village node (serial port) whether its village has seen the token spent")
    c.set_defaults(func=cmd_check)
    sh = s.add_parser("show", help="a token's state and history")
    sh.add_argument("token")
    sh.set_defaults(func=cmd_show)
    ex = s.add_parser("export", help="write a token's chain to a file (to present it offline)")
    ex.add_argument("token")
    ex.add_argument("file")
    ex.set_defaults(func=cmd_export)


def _user_key(args, text):
    try:
        return keyring(args).public_key(text)  # never advises creating a key named after someone's key
    except (KeyError, ValueError) as e:
        raise PenError(str(e).strip('"'))


def cmd_issue(args):
    issuer = load_key(args, args.key)
    in_range("--value", args.value, "credits")
    store = open_ctb(args)
    change = args.allowance is not None
    authority = parse_ref(args.allowance if change else args.proposal, "authority ref")
    rec = B.issue(issuer, fresh_serial(store, issuer.kid, b"T"), args.value, authority, change)
    submit(store, [rec])
    print("token %s issued: %d credits%s (ISSUED)" % (fmt_ref(rec.fields[0]), args.value, " change" if change else ""))


def cmd_assign(args):
    issuer = load_key(args, args.key)
    store = open_ctb(args)
    ref = parse_ref(args.token, "token ref")
    rec = B.set_user(issuer, ref, _user_key(args, args.user))
    submit(store, [rec])
    print("token %s now USABLE by %s" % (fmt_ref(ref), args.user))


def cmd_use(args):
    user = load_key(args, args.key)
    store = open_ctb(args)
    ref = parse_ref(args.token, "token ref")
    try:
        rec = B.use(user, ref, args.product, args.account)
        check_paid_product(store, args.product)  # a USE names a known product (docs/economy.md)
    except (ids.ProductIdError, CatalogueError) as e:
        raise PenError(str(e))
    v = submit(store, [rec])[0]
    if v.code == ctb.CONFLICT:
        raise PenError("double spend: token %s was already used; both uses are kept as evidence naming the "
                       "user's key" % fmt_ref(ref))
    print("token %s USED for product %s, credited to account %s" % (fmt_ref(ref), args.product, args.account))


def cmd_check(args):
    store = open_ctb(args)
    ref = parse_ref(args.token, "token ref")
    chain = read_bundle(args.chain) if args.chain else []
    spent = None
    note = ""
    if args.spent_from:
        from pen.bridge.serial import village_spent
        try:
            seen, kind, overflowed = village_spent(args.spent_from, ref)
        except (OSError, TimeoutError) as e:
            raise PenError("village node on %s: %s" % (args.spent_from, e))
        spent = {ref} if seen else set()
        if not seen and overflowed:
            note = " (the village node has forgotten old tokens: not seen there is not proof)"
    ans = check.check_token(store, ref, chain, live=args.live, spent=spent)
    print("%s: %s%s%s" % (ans.verdict.upper(), ans.reason, (" — " + ans.detail) if ans.detail else "", note))
    return 0 if ans.verdict != check.INVALID else 2


def cmd_show(args):
    store = open_ctb(args)
    ref = parse_ref(args.token, "token ref")
    t = store.get(b"T" + ref)
    if t is None:
        raise PenError("unknown token %s" % args.token)
    print("token %s  %d credits  %s  %s" % (fmt_ref(ref), ctb.token_value(t),
                                            "change" if ctb.token_kind(t) == R.CHANGE else "normal",
                                            ctb.token_state(t)))
    print("  issuer %s  authority %s" % (ctb.token_issuer(t).hex(), fmt_ref(ctb.token_authority(t))))
    if ctb.user(t):
        print("  user %s" % ctb.user(t).hex())
    eff = ctb.effective_use(t)
    for u in ctb.uses(t):
        print("  %s product %s -> account %s  (use %s)" % ("used:" if u is eff else "CONFLICT:",
                                                          ids.unpack(ctb.use_product(u)),
                                                          ids.unpack(ctb.use_account(u)), ctb.use_id(u).hex()))
    for rid, uid in ctb.receipts(t):
        print("  accounted (receipt %s for use %s)" % (rid.hex(), uid.hex()))


def cmd_export(args):
    store = open_ctb(args)
    ref = parse_ref(args.token, "token ref")
    raws = store.token_history(ref)
    if not raws:
        raise PenError("unknown token %s" % args.token)
    write_bundle(args.file, raws)
    print("wrote %d records to %s" % (len(raws), args.file))
