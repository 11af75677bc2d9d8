"""pen votation open|cast|close|show|export|verify"""
from pen import build as B
from pen.cli import PenError
from pen_protocol import ctb, ids, records as R, votation as VT
from pen.commands._common import (open_ctb, load_key, submit, resolve_kid, fresh_serial, fmt_ref, parse_ref,
                                  parse_time, write_bundle, read_bundle)


def register(sub):
    p = sub.add_parser("votation", help="council votations: open, cast, close, verify")
    s = p.add_subparsers(dest="votation_cmd", metavar="ACTION")
    s.required = True
    o = s.add_parser("open", help="open a votation owned by your council")
    o.add_argument("--key", required=True, help="owner council's key name")
    o.add_argument("--subject", required=True, choices=R.SUBJECTS)
    o.add_argument("--about", required=True,
                   help="admit/dismember: council; approve: proposal ref; exchange: AMOUNT:ACCOUNT; other: text")
    o.add_argument("--deadline", help="unix seconds or ISO time (default: 7 days from now)")
    o.set_defaults(func=cmd_open)
    c = s.add_parser("cast", help="cast your council's vote")
    c.add_argument("--key", required=True)
    c.add_argument("--votation", required=True)
    c.add_argument("--choice", required=True, choices=R.CHOICES)
    c.set_defaults(func=cmd_cast)
    cl = s.add_parser("close", help="close a votation you own, counting the votes in the CTB")
    cl.add_argument("--key", required=True)
    cl.add_argument("--votation", required=True)
    cl.add_argument("--time", help="closing time (default now)")
    cl.set_defaults(func=cmd_close)
    sh = s.add_parser("show", help="show a votation (or list all)")
    sh.add_argument("votation", nargs="?")
    sh.set_defaults(func=cmd_show)
    ex = s.add_parser("export", help="write a votation's evidence chain to a file")
    ex.add_argument("votation")
    ex.add_argument("file")
    ex.set_defaults(func=cmd_export)
    ve = s.add_parser("verify", help="recompute a votation's tally from its records alone")
    ve.add_argument("file")
    ve.set_defaults(func=cmd_verify)


def _about(args, store, owner):
    subj = args.subject
    if subj in ("admit", "dismember"):
        return B.membership_about(R.parse(_council_record(store, resolve_kid(args, store, args.about))),
                                  _next_attempt(store))
    if subj == "approve":
        return parse_ref(args.about, "proposal ref")
    if subj == "exchange":
        try:
            amount, account = args.about.split(":")
            return [owner.kid, int(amount), ids.pack(account)]
        except (ValueError, ids.ProductIdError):
            raise PenError("exchange --about must be AMOUNT:ACCOUNT (account a 2-12 digit product id)")
    return args.about


def _next_attempt(store):
    """The first free membership slot at the current epoch."""
    e, a = ctb.epoch(store), 0
    while store.get(b"S" + e.to_bytes(4, "big") + a.to_bytes(4, "big")) is not None:
        a += 1
    return a


def cmd_open(args):
    if args.deadline and parse_time(args.deadline) <= parse_time(None):
        raise PenError("the deadline %s has passed; a votation needs a deadline in the future" % args.deadline)
    owner = load_key(args, args.key)
    store = open_ctb(args)
    epoch = ctb.epoch(store)
    if epoch is None:
        raise PenError("no economy in this CTB yet: found one with pen ctb init")
    about = _about(args, store, owner)
    deadline = parse_time(args.deadline) if args.deadline else parse_time(None) + 7 * 86400
    electorate = ctb.electorate_of(store, epoch)
    serial = fresh_serial(store, owner.kid, b"V")
    rec = B.votation_open(owner, serial, args.subject, about, electorate, deadline, epoch)
    submit(store, [rec])
    print("votation %s opened: %s, electorate %d councils, majority needs %d yes" % (
        fmt_ref(rec.fields[0]), args.subject, len(electorate), len(electorate) // 2 + 1))


def cmd_cast(args):
    voter = load_key(args, args.key)
    store = open_ctb(args)
    ref = parse_ref(args.votation, "votation ref")
    v = store.get(b"V" + ref)
    if v is not None and ctb.votation_epoch(v) != ctb.epoch(store):
        # an honest council votes only on votations of the councils as they
        # are now: a votation pinned to an older membership is how a past
        # majority would try to outvote the present one
        raise PenError("votation %s counts the councils of membership epoch %d, not the current %d: not voting"
                       % (args.votation, ctb.votation_epoch(v), ctb.epoch(store)))
    rec = B.vote(voter, ref, args.choice)
    v = submit(store, [rec])[0]
    if v.code == ctb.CONFLICT:
        raise PenError("vote not counted: %s — this council already voted; its vote with the lowest record id "
                       "counts and both are kept as evidence" % v.reason)
    if v.code == ctb.DUPLICATE:
        print("this vote is already in the CTB")
        return 0
    print("vote %s cast on %s" % (args.choice, fmt_ref(ref)))


def _counted(store, v):
    return [R.parse(store.get_record(x[1])) for x in ctb.counted_votes(v).values()]


def cmd_close(args):
    owner = load_key(args, args.key)
    store = open_ctb(args)
    ref = parse_ref(args.votation, "votation ref")
    v = store.get(b"V" + ref)
    if v is None:
        raise PenError("unknown votation %s" % args.votation)
    rec = B.votation_close(owner, R.parse(store.get_record(ctb.votation_open_id(v))), _counted(store, v),
                           parse_time(args.time))
    submit(store, [rec])
    yes, no, ab = rec.fields[2], rec.fields[3], rec.fields[4]
    n = len(ctb.votation_electorate(v))
    print("votation %s closed: %d yes, %d no, %d abstain of %d councils: %s" % (
        fmt_ref(ref), yes, no, ab, n, "PASSED" if 2 * yes > n else "not passed"))


def cmd_show(args):
    store = open_ctb(args)
    rows = store.state_prefix(b"V") if not args.votation else [
        (b"V" + parse_ref(args.votation), store.get(b"V" + parse_ref(args.votation)))]
    for k, v in rows:
        if v is None:
            raise PenError("unknown votation %s" % args.votation)
        result = ctb.votation_result(v)
        state = "open" if result is None else ("passed" if ctb.votation_passed(v) else "not passed")
        tally = [0, 0, 0]
        for c in ctb.counted_votes(v).values():
            tally[c[0]] += 1
        print("%s  %-9s %-10s epoch %d electorate %d  yes %d no %d abstain %d  voted twice %d" % (
            fmt_ref(k[1:]), R.SUBJECTS[ctb.votation_subject(v)], state, ctb.votation_epoch(v),
            len(ctb.votation_electorate(v)), tally[1], tally[0], tally[2], len(ctb.double_voters(v))))


def chain_records(store, ref):
    v = store.get(b"V" + ref)
    if v is None:
        raise PenError("unknown votation %s" % fmt_ref(ref))
    out = []
    electorate, subject, about = ctb.votation_electorate(v), ctb.votation_subject(v), ctb.votation_about(v)
    for kid in electorate:
        out.append(_council_record(store, kid))
    op = R.parse(store.get_record(ctb.votation_open_id(v)))
    if subject == R.APPROVE:
        out += [raw for _, raw in store.records(types=[R.PROPOSAL]) if R.parse(raw).fields[0] == about]
    elif subject in (R.ADMIT, R.DISMEMBER) and store.get_record(about[0]) not in out:
        out.append(store.get_record(about[0]))
    out.append(op.raw)
    for _, raw in store.records(types=[R.VOTE, R.VOTATION_CLOSE, R.CONFLICT]):
        r = R.parse(raw)
        if r.type == R.CONFLICT:
            if R.parse(r.fields[0]).type == R.VOTE and R.parse(r.fields[0]).fields[1] == ref:
                out.append(raw)
        elif r.fields[0 if r.type == R.VOTATION_CLOSE else 1] == ref:
            out.append(raw)
    return out


def _council_record(store, kid):
    for _, raw in store.records(types=[R.COUNCIL]):
        r = R.parse(raw)
        if R.sign.kid(r.fields[0]) == kid:
            return raw
    raise PenError("council record for %s missing" % kid.hex())


def cmd_export(args):
    store = open_ctb(args)
    raws = chain_records(store, parse_ref(args.votation, "votation ref"))
    write_bundle(args.file, raws)
    print("wrote %d records to %s" % (len(raws), args.file))


def cmd_verify(args):
    raws = read_bundle(args.file)
    store = open_ctb(args)
    # the records alone cannot show who the councils were: check the
    # electorate against this CTB's membership when it has the epoch
    rep = VT.verify(raws, store if ctb.epoch(store) is not None else None)
    for what, reason, detail in rep.problems:
        print("problem: %s %s %s" % (what, reason, detail))
    for n in rep.notes:
        print("note: " + n)
    if rep.votation is None:
        raise PenError("no votation in %s" % args.file)
    print("votation %s (%s), electorate %d" % (fmt_ref(rep.votation), rep.subject, len(rep.electorate)))
    if rep.tally:
        print("recomputed from signed votes: %d yes, %d no, %d abstain; councils that voted twice: %d" % (
            rep.tally + (len(rep.double),)))
    if rep.closed:
        print("close states: %d yes, %d no, %d abstain -> %s" % (
            rep.closed[0], rep.closed[1], rep.closed[2], "PASSED" if rep.closed[3] else "not passed"))
    if not rep.ok:
        raise PenError("votation does not verify")
    print("verified: every signature checks and the tally follows from the votes")
