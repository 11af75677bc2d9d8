"""pen ctb init|status|export|import"""
from pen import build as B
from pen.cli import PenError
from pen_protocol import ctb, ids, records as R
from pen.commands._common import (open_ctb, load_key, keyring, submit, resolve_kid, parse_time, write_bundle,
                                  read_bundle)
from pen.store import BatchRejected


def register(sub):
    p = sub.add_parser("ctb", help="the Credit Token Blockchain on this machine")
    s = p.add_subparsers(dest="ctb_cmd", metavar="ACTION")
    s.required = True
    i = s.add_parser("init", help="found an economy: genesis naming the founding councils")
    i.add_argument("--name", required=True)
    i.add_argument("--founder", action="append", required=True,
                   help="founding council (key name, kid or council name), repeat for each; the first is the "
                        "economy's federation and its key must be here. Every founder consents: with its key "
                        "here, or with --consent")
    i.add_argument("--time", help="genesis time, unix seconds or ISO (default now; must match the consents)")
    i.add_argument("--consent", action="append", default=[], metavar="KID:SIGNATURE",
                   help="a founder's consent made elsewhere with `pen ctb consent`")
    i.set_defaults(func=cmd_init)
    co = s.add_parser("consent", help="sign your council's consent to a genesis, for the founder who makes it")
    co.add_argument("--key", required=True, help="your council's key name")
    co.add_argument("--name", required=True)
    co.add_argument("--founder", action="append", required=True, help="every founder, in the genesis order")
    co.add_argument("--time", required=True, help="the genesis time agreed with the other founders")
    co.set_defaults(func=cmd_consent)
    st = s.add_parser("status", help="what this CTB holds")
    st.set_defaults(func=cmd_status)
    ex = s.add_parser("export", help="write every record to a file")
    ex.add_argument("file")
    ex.set_defaults(func=cmd_export)
    im = s.add_parser("import", help="validate and add the records of a file (all or nothing)")
    im.add_argument("file")
    im.set_defaults(func=cmd_import)
    rb = s.add_parser("rebuild", help="derive the state again from the records under this Pen's rules "
                                      "(done by itself when a CTB was written under other rules)")
    rb.set_defaults(func=cmd_rebuild)


def _consents(texts):
    out = {}
    for text in texts:
        try:
            kid, sig = (bytes.fromhex(x) for x in text.split(":"))
        except ValueError:
            kid = sig = b""
        if len(kid) != 4 or len(sig) != 64:
            raise PenError("bad --consent %r: expected KID:SIGNATURE (8 and 128 hex digits)" % text)
        out[kid] = sig
    return out


def _founder(args, store, text, consents):
    """A founder's Signer when its key is here, else its kid (its consent given)."""
    if keyring(args).path(text).exists():
        return load_key(args, text)
    kid = resolve_kid(args, store, text)
    for name in keyring(args).names():  # named by kid or council name, key here
        if load_key(args, name).kid == kid:
            return load_key(args, name)
    if kid not in consents:
        raise PenError("founder %s: its key is not on this machine and no --consent %s:... was given "
                       "(it makes one with pen ctb consent)" % (text, kid.hex()))
    return kid


def cmd_init(args):
    store = open_ctb(args)
    consents = _consents(args.consent)
    founders = [_founder(args, store, f, consents) for f in args.founder]
    if not hasattr(founders[0], "kid"):
        raise PenError("the first founder (the economy's federation) signs the genesis: its key must be here")
    rec = B.genesis(founders, args.name, parse_time(args.time), consents)
    submit(store, [rec])
    print("economy %s founded by %d councils, each signing its consent" % (args.name, len(founders)))


def cmd_consent(args):
    signer = load_key(args, args.key)
    store = open_ctb(args)
    kids = [resolve_kid(args, store, f) for f in args.founder]
    if signer.kid not in kids:
        raise PenError("%s is not among the founders" % args.key)
    sig = B.genesis_consent(signer, args.name, kids, parse_time(args.time))
    print("%s:%s" % (signer.kid.hex(), sig.hex()))


def balances(store):
    """The books: every credit issued is in exactly one place."""
    issued = {"ISSUED": 0, "USABLE": 0, "USED": 0, "ACCOUNTED": 0}
    conflicts = 0
    for _, t in store.state_prefix(b"T"):
        issued[ctb.token_state(t)] += ctb.token_value(t)
        conflicts += len(ctb.uses(t)) > 1
    spent = issued["USED"] + issued["ACCOUNTED"]
    accounts = sum(ctb.amount(v) for _, v in store.state_prefix(b"A"))
    products = sum(ctb.amount(v) for _, v in store.state_prefix(b"Q"))
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
        change_ok = change_ok and total <= ctb.amount(store.get(b"N" + acct))
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
    aside = store.set_aside()
    if aside:
        print("set aside: %d records an older Pen accepted and these rules refuse (kept in the table set_aside; "
              "pen ctb rebuild lists them)" % len(aside))
    b = balances(store)
    print("tokens by state: " + ", ".join("%s %d" % kv for kv in b["tokens_by_state"].items()))
    print("books %s: %d spent, %d credited to accounts, %d conflicts" % (
        "balance" if b["balanced"] else "DO NOT BALANCE", b["spent"], b["credited_to_accounts"], b["conflicts"]))


def cmd_rebuild(args):
    from rich.progress import Progress
    store = open_ctb(args)
    before = store.state_digest()
    import time
    n = store.count()
    t0 = time.perf_counter()
    with Progress(transient=True) as bar:
        task = bar.add_task("deriving the state from %d records" % n, total=n)
        aside = store.rebuild_state(progress=lambda done, total: bar.update(task, completed=done))
    took = time.perf_counter() - t0
    print("state derived again from %d records under rules %d in %.1f s (%.0f us a record): %s" % (
        n, ctb.RULES_VERSION, took, took / max(n, 1) * 1e6,
        "unchanged" if store.state_digest() == before else "it differed, now fixed"))
    for rid, why in aside:
        print("  set aside %s: %s" % (rid.hex(), why))
    for rid, raw, seq, why, rules in store.set_aside():
        if (rid, why) not in aside:
            print("  set aside before (rules %d) %s: %s" % (rules, rid.hex(), why))
    return 0


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
