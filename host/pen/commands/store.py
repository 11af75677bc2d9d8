"""pen store pair|trust|pay|resume|check|receipts: a store paying through its
node over a link (serial, tcp, pty, ble, meshtastic), receipts verified
against pinned CTB node keys, a durable outbox (docs/store.md)."""
import json
import os
import sys

from pen import build as B
from pen.cli import PenError
from pen.commands._common import home, home_path, load_key, open_ctb, parse_ref, fmt_ref
from pen_protocol import ids, records as R

LINK_HELP = ("serial:/dev/ttyUSB0 | tcp:HOST:PORT | pty:COMMAND | ble:NAME | "
             "meshtastic:serial:PORT[@NODE] | meshtastic:tcp:HOST[@NODE]")


def register(sub):
    p = sub.add_parser("store", help="a store: pair with its node, pay through it, verified receipts")
    s = p.add_subparsers(dest="store_cmd", metavar="ACTION")
    s.required = True
    a = s.add_parser("pair", help="pair with the node by the code on its console (once)")
    a.add_argument("--link", required=True, help=LINK_HELP)
    a.add_argument("--code", required=True, help="the code the node shows")
    a.add_argument("--key", required=True, help="this store's key name (pen keys new NAME)")
    a.set_defaults(func=cmd_pair)
    t = s.add_parser("trust", help="pin a CTB node's public key: only its receipts count")
    t.add_argument("public_key", help="64 hex digits")
    t.set_defaults(func=cmd_trust)
    y = s.add_parser("pay", help="sign (or relay) a USE, hand it to the node, wait for its receipt")
    y.add_argument("--link", required=True, help=LINK_HELP)
    g = y.add_mutually_exclusive_group(required=True)
    g.add_argument("--key", help="the payer's key name: sign a USE here")
    g.add_argument("--record", help="an already-signed USE: a file, or hex")
    y.add_argument("--token", help="token ref (with --key)")
    y.add_argument("--product", help="product id bought (with --key)")
    y.add_argument("--account", help="receiving account (with --key)")
    y.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the receipt (default 60)")
    y.set_defaults(func=cmd_pay)
    r = s.add_parser("resume", help="send every payment not yet accounted again (after a crash)")
    r.add_argument("--link", required=True, help=LINK_HELP)
    r.add_argument("--wait", type=float, default=60.0)
    r.set_defaults(func=cmd_resume)
    c = s.add_parser("check", help="ask the node's village spent set about a token (offline)")
    c.add_argument("--link", required=True, help=LINK_HELP)
    c.add_argument("--token", required=True)
    c.set_defaults(func=cmd_check)
    ls = s.add_parser("receipts", help="every payment in the outbox with its state")
    ls.set_defaults(func=cmd_receipts)


def _dir(args):
    d = home(args) / "store"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _pairings(args):
    f = _dir(args) / "pairings.json"
    return json.loads(f.read_text()) if f.exists() else {}


def _write_private(path, text):
    tmp = str(path) + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _trusted(args):
    f = _dir(args) / "ctb_keys.txt"
    return [bytes.fromhex(x) for x in f.read_text().split()] if f.exists() else []


def _open(args):
    from pen.transport import open_link, LinkSpecError
    try:
        return open_link(args.link)
    except (OSError, LinkSpecError, ImportError) as e:
        raise PenError("cannot open link %s: %s" % (args.link, e))


def _client(args, port):
    """A sealed session when this link was paired, else the plain link."""
    from pen.transport.secure import Paired, open_session, LinkRefused
    d = _pairings(args).get(args.link)
    if d is None:
        print("note: %s is not paired (pen store pair): frames go in the clear" % args.link, file=sys.stderr)
        return None
    try:
        return open_session(port, Paired.from_json(d))
    except (LinkRefused, TimeoutError) as e:
        raise PenError("opening a session on %s: %s" % (args.link, e))


def _store_client(args, need_keys=True):
    from pen.storeclient import Outbox, StoreClient
    keys = _trusted(args)
    if need_keys and not keys:
        raise PenError("no CTB node key pinned: pen store trust PUBLIC_KEY (receipts cannot be verified)")
    port = _open(args)
    wait = getattr(args, "wait", None)

    def progress(p):
        if p.state == "sent" and wait:
            print("payment %s is in the node's custody; waiting up to %d s for its receipt ..." % (
                p.id.hex()[:12], wait), file=sys.stderr, flush=True)
    return StoreClient(port, Outbox(_dir(args) / "outbox.sqlite"), keys, client=_client(args, port),
                       on_state=progress, products=_catalogue_check(args))


def _catalogue_check(args):
    """The store's CTB copy, if it has one, checks each USE's product
    against the economy's catalogue before the store takes it."""
    from pen.economy.catalogue import check_paid_product
    if not (getattr(args, "db", None) or os.environ.get("PEN_DB") or (home_path(args) / "ctb.sqlite").exists()):
        return None
    store = open_ctb(args)
    return lambda pid: check_paid_product(store, pid)


def _show(p):
    from pen.storeclient import ACCOUNTED
    line = "payment %s token %s %s" % (p.id.hex(), fmt_ref(p.token), p.state)
    if p.state == ACCOUNTED:
        line += " (receipt verified, %d bytes)" % len(p.receipt)
    print(line)


def _run(fn):
    from pen.storeclient import NoAnswer
    from pen.transport.secure import LinkRefused
    try:
        return fn()
    except (NoAnswer, LinkRefused, OSError, EOFError) as e:
        raise PenError("%s (the payment stays in the outbox: pen store resume)" % e)


def cmd_pair(args):
    from pen.transport.secure import pair, LinkRefused
    me = load_key(args, args.key)
    port = _open(args)
    try:
        paired = pair(port, args.code.strip(), me.public_key)
    except (LinkRefused, TimeoutError) as e:
        raise PenError("pairing failed: %s" % e)
    finally:
        port.close()
    all_ = _pairings(args)
    all_[args.link] = paired.to_json()
    _write_private(_dir(args) / "pairings.json", json.dumps(all_, indent=1))
    print("paired with the node on %s as key %s (kid %s)" % (args.link, me.name, me.kid.hex()))


def cmd_trust(args):
    try:
        pk = bytes.fromhex(args.public_key)
        if len(pk) != 32:
            raise ValueError
    except ValueError:
        raise PenError("a public key is 64 hex digits")
    keys = _trusted(args)
    if pk not in keys:
        keys.append(pk)
    _write_private(_dir(args) / "ctb_keys.txt", "\n".join(k.hex() for k in keys) + "\n")
    print("receipts signed by %s are trusted" % pk.hex())


def _record(args):
    if args.record:
        try:
            text = open(args.record, "rb").read() if os.path.exists(args.record) else bytes.fromhex(args.record)
        except ValueError:
            raise PenError("--record is a file or hex")
        return text
    if not (args.token and args.product and args.account):
        raise PenError("with --key give --token, --product and --account")
    user = load_key(args, args.key)
    try:
        return B.use(user, parse_ref(args.token, "token ref"), args.product, args.account).raw
    except ids.ProductIdError as e:
        raise PenError(str(e))


def cmd_pay(args):
    raw = _record(args)
    products = _catalogue_check(args)
    if products is not None:  # before the link is opened; StoreClient.pay checks again (and what a USE is)
        try:
            rec = R.parse(raw)
            if rec.type == R.USE:
                products(ids.unpack(rec.fields[1]))
        except R.RecordError:
            pass
        except ValueError as e:
            raise PenError(str(e))
    sc = _store_client(args)
    try:
        p = _run(lambda: sc.pay(raw, wait_s=args.wait))
    except ValueError as e:
        raise PenError(str(e))
    _show(p)
    return 0 if p.state == "accounted" else 3


def cmd_resume(args):
    sc = _store_client(args)
    done = _run(lambda: sc.resume(wait_s=args.wait))
    for p in done:
        _show(p)
    if not done:
        print("nothing to resume: every payment is accounted")
    return 0 if all(p.state == "accounted" for p in done) else 3


def cmd_check(args):
    ref = parse_ref(args.token, "token ref")
    sc = _store_client(args, need_keys=False)  # no receipt to verify here
    s = _run(lambda: sc.check(ref))
    what = ("seen used" if s.kind == 1 else "seen accounted") if s.spent else "not seen spent"
    note = " (the node has forgotten old tokens: not seen is not proof)" if s.overflowed and not s.spent else ""
    print("token %s: %s in the village%s" % (fmt_ref(ref), what, note))


def cmd_receipts(args):
    from pen.storeclient import Outbox
    ob = Outbox(_dir(args) / "outbox.sqlite")
    ps = ob.all()
    for p in ps:
        _show(p)
    if not ps:
        print("no payments yet")
