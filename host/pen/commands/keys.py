"""pen keys new|show"""
from pen.cli import PenError
from pen.commands._common import keyring


def register(sub):
    p = sub.add_parser("keys", help="create and show Ed25519 keys")
    s = p.add_subparsers(dest="keys_cmd", metavar="ACTION")
    s.required = True
    n = s.add_parser("new", help="create a new key")
    n.add_argument("name")
    n.set_defaults(func=cmd_new)
    sh = s.add_parser("show", help="show a key's public half (or list keys)")
    sh.add_argument("name", nargs="?")
    sh.add_argument("--qr", action="store_true", help="also print the public key as a QR code, for exchanging keys")
    sh.set_defaults(func=cmd_show)


def cmd_new(args):
    try:
        s = keyring(args).new(args.name)
    except (FileExistsError, ValueError) as e:
        raise PenError(str(e))
    print("created key %s  kid %s  public %s" % (s.name, s.kid.hex(), s.public_key.hex()))


def cmd_show(args):
    kr = keyring(args)
    if not args.name:
        for n in kr.names():
            s = kr.load(n)
            print("%-20s kid %s  public %s" % (n, s.kid.hex(), s.public_key.hex()))
        return 0
    try:
        s = kr.load(args.name)
    except (KeyError, ValueError) as e:
        raise PenError(str(e).strip('"'))
    print("key %s\nkid %s\npublic %s" % (s.name, s.kid.hex(), s.public_key.hex()))
    if args.qr:
        import segno
        segno.make("pen:key:" + s.public_key.hex(), error="m").terminal(compact=True)
