"""pen register: the store register, a local web page (docs/register.md)."""
from pen.cli import PenError
from pen.commands._common import home, load_key, open_ctb
from pen.commands.store import LINK_HELP, _dir, _trusted
from pen_protocol import ids


def register(sub):
    p = sub.add_parser("register", help="the store register: a local web page to take payments all day")
    p.add_argument("--link", required=True, help=LINK_HELP)
    p.add_argument("--listen", default="127.0.0.1:8480", help="HOST:PORT to serve on (default 127.0.0.1:8480)")
    p.add_argument("--account", required=True, help="the store's receiving account (a product id)")
    p.add_argument("--shop", help="the store council's key name: gives its change tokens")
    p.add_argument("--exchange", help="the store's exchange account (with --shop): tokens taken in for change")
    p.set_defaults(func=cmd_register)


def link_opener(args):
    """() -> (port, session client or None, paired): what the worker calls
    each time it (re)opens the link."""
    from pen.commands.store import _open, _pairings
    from pen.transport.secure import Paired, open_session

    def opener():
        port = _open(args)
        d = _pairings(args).get(args.link)
        if d is None:
            return port, None, False
        return port, open_session(port, Paired.from_json(d)), True
    return opener


def cmd_register(args):
    from aiohttp import web
    from pen.register.app import make_app
    from pen.register.core import Register
    from pen.register.worker import Worker
    try:
        ids.pack(args.account)
    except ids.ProductIdError as e:
        raise PenError("--account: %s" % e)
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise PenError("--listen is HOST:PORT")
    keys = _trusted(args)
    if not keys:
        raise PenError("no CTB node key pinned: pen store trust PUBLIC_KEY (receipts cannot be verified)")
    shop = load_key(args, args.shop) if args.shop else None
    outbox = _dir(args) / "outbox.sqlite"
    if bool(args.shop) != bool(args.exchange):
        raise PenError("--shop and --exchange go together (change needs both)")
    reg = Register(open_ctb(args), outbox, args.account, shop, args.exchange)
    w = Worker(link_opener(args), outbox, keys, reg.link)
    reg.spent = w.ask_spent
    w.start()
    print("register on http://%s:%s/ (home %s)" % (host, port, home(args)), flush=True)
    try:
        web.run_app(make_app(reg), host=host, port=int(port), print=None)
    finally:
        w.stop()
