"""pen ctb init|status|export|import"""
from pen import build as B
from pen.cli import PenError
from pen_protocol import ctb, ids, records as R
from pen.commands._common import (open_ctb, load_key, submit, resolve_kid, parse_time, write_bundle, read_bundle)
from pen.store import BatchRejected


def register(sub):
    p = sub.add_parser("ctb", help="the Credit Token Blockchain on this machine")
    s = p.add_subparsers(dest="ctb_cmd", metavar="ACTION")
    s.required = True
    i = s.add_parser("init", help="found an economy: genesis naming the founding councils")
    i.add_argument("--name", required=True)
    i.add_argument("--founder", action="append", required=True,
                   help="founding council's key name, repeat for each; the first is the economy's federation. "
                        "Every founder signs its consent, so every founder's key must be on this machine")
    i.set_defaults(func=cmd_init)
    st = s.add_parser("status", help="what this CTB holds")
    st.set_defaults(func=cmd_status)
    ex = s.add_parser("export", help="write every record to a file")
    ex.add_argument("file")
    ex.set_defaults(func=cmd_export)
    im = s.add_parser("import", help="validate and add the records of a file (all or nothing)")
    im.add_argument("file")
    im.set_defaults(func=cmd_import)


def cmd_init(args):
    founders = [load_key(args, f) for f in args.founder]
    store = open_ctb(args)
    rec = B.genesis(founders, args.name, parse_time(None))
    submit(store, [rec])
    print("economy %s founded by %d councils, each signing its consent" % (args.name, len(founders)))


def balances(store):
    """The books: every credit issued is in exactly one place."""
    issued = {"ISSUED": 0, "USABLE": 0, "USED": 0, "ACCOUNTED": 0}
    conflicts = 0
    for _, t in store.state_prefix(b"T"):
        issued[ctb.token_state(t)] += ctb.token_value(t)
        conflicts += len(ctb.uses(t)) > 1
    spent = issued["USED"] + issued["ACCOUNTED"]
    accounts = sum(v for _, v in store.state_prefix(b"A"))
    products = sum(v for _, v in store.state_prefix(b"Q"))
    caps_ok = all(ctb.proposal_issued(p) <= ctb.proposal_total(p) and
                  (ctb.proposal_approved(p) or ctb.proposal_issued(p) == 0) for _, p in store.state_prefix(b"P"))
    change_ok = all(ctb.allowance_issued(x) <= ctb.allowance_amount(x) for _, x in store.state_prefix(b"X"))
    # conservation per exchange account, over every allowance naming it: change
    # released never exceeds the normal credits taken into the account
    released = {}
    for _, x in store.state_prefix(b"X"):
        acct = ctb.allowance_account(x)
        released[acct] = released.get(acct, 0) + ctb.allowance_released(x)
    for acct, total in released.items():
        change_ok = change_ok and total <= (store.get(b"N" + acct) or 0)
    return {
        "tokens_by_state": issued,
        "spent": spent,
        "credited_to_accounts": accounts,
        "spent_on_products": products,
        "conflicts": conflicts,
        "issuance_within_approved": caps_ok,
        "change_covered_by_exchange": change_ok,
        "balanced": spent == accounts == products and caps_ok and change_ok,
    }


def cmd_status(args):
    store = open_ctb(args)
    print("CTB %s  schema %d  %d records" % (store.path if hasattr(store, "path") else "", store.schema_version(),
                                             store.count()))
    print("economy: %s" % (ctb.economy_name(store) or "(no genesis yet)"))
    if ctb.epoch(store) is not None:
        print("membership epoch %d: %d councils" % (ctb.epoch(store), len(ctb.electorate_of(store, ctb.epoch(store)))))
    for name, n in store.counts_by_type().items():
        print("  %-15s %d" % (name, n))
    b = balances(store)
    print("tokens by state: " + ", ".join("%s %d" % kv for kv in b["tokens_by_state"].items()))
    print("books %s: %d spent, %d credited to accounts, %d conflicts" % (
        "balance" if b["balanced"] else "DO NOT BALANCE", b["spent"], b["credited_to_accounts"], b["conflicts"]))


def cmd_export(args):
    store = open_ctb(args)
    raws = [raw for _, raw in store.records()]
    write_bundle(args.file, raws)
    print("wrote %d records to %s" % (len(raws), args.file))


def cmd_import(args):
    raws = read_bundle(args.file)
    store = open_ctb(args)
    try:
        verdicts = store.submit(raws)
    except BatchRejected as e:
        raise PenError("record %d of %s rejected: %s%s (nothing imported)" % (
            e.index, args.file, e.verdict.reason, ": " + e.verdict.detail if e.verdict.detail else ""))
    new = sum(v.code == ctb.ACCEPTED for v in verdicts)
    dup = sum(v.code == ctb.DUPLICATE for v in verdicts)
    con = sum(v.code == ctb.CONFLICT for v in verdicts)
    print("imported %d new records (%d already here, %d conflicts kept as evidence)" % (new, dup, con))
