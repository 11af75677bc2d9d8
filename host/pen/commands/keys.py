"""pen keys new|show|seal|import|cert|memberships"""
import getpass
import sys

from pen.cli import PenError
from pen.commands._common import keyring, open_ctb, submit
from pen.keys import SealError, key_payload, parse_public, KEY_PAYLOAD, SEALED_PAYLOAD
from pen_protocol import ctb, membership, records as R, sign


def register(sub):
    p = sub.add_parser("keys", help="create, show, seal and import Ed25519 keys")
    s = p.add_subparsers(dest="keys_cmd", metavar="ACTION")
    s.required = True
    n = s.add_parser("new", help="create a new key")
    n.add_argument("name")
    n.set_defaults(func=cmd_new)
    sh = s.add_parser("show", help="show a key's public half (or list keys)")
    sh.add_argument("name", nargs="?")
    sh.add_argument("--qr", action="store_true", help="also print the public key as a QR code, for exchanging keys")
    sh.add_argument("--out", metavar="FILE", help="write the public key's QR (.png/.svg) or payload (other) to FILE")
    sh.set_defaults(func=cmd_show)
    se = s.add_parser("seal", help="seal a stored key with a password (Argon2id + secretbox); the plain copy goes")
    se.add_argument("name")
    se.set_defaults(func=cmd_seal)
    im = s.add_parser("import", help="import a public key, a sealed key or member certificates "
                                     "(a pen: payload, a key file, an image of a QR, or --camera)")
    im.add_argument("source", nargs="?", help="payload, file or image")
    im.add_argument("--name", help="local name for an imported key")
    im.add_argument("--camera", nargs="?", const="0", metavar="DEVICE",
                    help="read the QR from a camera: its index (default 0), a device such as /dev/video2, or "
                         "a stream OpenCV opens")
    im.set_defaults(func=cmd_import)
    ce = s.add_parser("cert", help="write a key's member certificates, to hand to the member (file or QR image)")
    ce.add_argument("name", help="key name, contact, 64 hex or pen:key: payload")
    ce.add_argument("--out", required=True, metavar="FILE", help=".png/.svg for a QR (one certificate), else text")
    ce.set_defaults(func=cmd_cert)
    me = s.add_parser("memberships", help="the councils a key is a member of, and its roles")
    me.add_argument("name")
    me.set_defaults(func=cmd_memberships)


def _err(e):
    return PenError(str(e).strip('"'))


def cmd_new(args):
    try:
        s = keyring(args).new(args.name)
    except (FileExistsError, ValueError) as e:
        raise _err(e)
    print("created key %s  kid %s  public %s" % (s.name, s.kid.hex(), s.public_key.hex()))


def cmd_show(args):
    kr = keyring(args)
    if not args.name:
        for n in kr.names():
            s = kr.load(n)
            print("%-20s kid %s  public %s" % (n, s.kid.hex(), s.public_key.hex()))
        for what, names in (("sealed", kr.sealed_names()), ("contact", kr.contact_names())):
            for n in names:
                pk = kr.public_key(n)
                print("%-20s kid %s  public %s  (%s)" % (n, sign.kid(pk).hex(), pk.hex(), what))
        return 0
    try:
        pk = kr.public_key(args.name)
    except (KeyError, ValueError, SealError) as e:
        raise _err(e)
    print("key %s\nkid %s\npublic %s" % (args.name, sign.kid(pk).hex(), pk.hex()))
    if args.qr:
        import segno
        segno.make(key_payload(pk), error="m").terminal(compact=True)
    if args.out:
        _write_payload(args.out, key_payload(pk))


def _write_payload(path, text):
    from pen.economy import qr
    try:
        if str(path).lower().endswith((".png", ".svg")):
            qr.save_qr(text, path)
        else:
            with open(path, "w") as f:
                f.write(text + "\n")
    except OSError as e:
        raise PenError("cannot write %s: %s" % (path, e.strerror))
    print("wrote %s" % path)


def read_password(prompt, confirm=False):
    """From the terminal (not echoed), or the first line of stdin when it is
    not a terminal (scripts, tests)."""
    if sys.stdin is None:
        raise PenError("a password is needed and there is no terminal or stdin")
    if sys.stdin.isatty():
        pw = getpass.getpass(prompt)
        if confirm and getpass.getpass("again: ") != pw:
            raise PenError("the passwords differ; nothing changed")
    else:
        pw = sys.stdin.readline().rstrip("\r\n")
    if not pw:
        raise PenError("the password may not be empty; nothing changed")
    return pw


def cmd_seal(args):
    kr = keyring(args)
    try:
        kr.load(args.name)
    except (KeyError, ValueError) as e:
        raise _err(e)
    pw = read_password("password for %s: " % args.name, confirm=True)
    try:
        kr.seal(args.name, pw)
    except (FileExistsError, SealError, ValueError) as e:
        raise _err(e)
    print("key %s sealed: it signs only with its password; no plain copy is kept" % args.name)


def cmd_import(args):
    from pen.economy import qr
    if (args.camera is not None) == bool(args.source):
        raise PenError("give a payload, a file or an image, or --camera (one of them)")
    try:
        texts = [qr.from_camera(device=qr.camera_device(args.camera))] if args.camera is not None \
            else qr.read_source(args.source)
    except qr.QRError as e:
        raise PenError(str(e))
    kr = keyring(args)
    keys, recs = [], []
    for t in texts:
        if t.startswith(qr.REC_PAYLOAD):
            try:
                rec = R.parse(qr.parse_record_payload(t))
            except (qr.QRError, R.RecordError) as e:
                raise PenError("bad certificate: %s (nothing imported)" % e)
            if rec.type != R.MEMBER:
                raise PenError("a %s record is not a member certificate (nothing imported)" % rec.name)
            recs.append(rec)
        elif t.startswith(SEALED_PAYLOAD) or t.lower().startswith(KEY_PAYLOAD) or parse_public_or_none(t):
            keys.append(t)
        else:
            raise PenError("not a Pen key or certificate: %r (nothing imported)" % t[:40])
    if len(keys) > 1:
        raise PenError("%d keys in one source: import them one at a time" % len(keys))
    if keys and not args.name:
        raise PenError("name the imported key: --name NAME (nothing imported)")
    if keys:
        try:
            if keys[0].startswith(SEALED_PAYLOAD):
                kr.import_sealed(args.name, keys[0])
                what = "sealed key"
            else:
                kr.import_public(args.name, parse_public(keys[0]))
                what = "contact"
        except (FileExistsError, ValueError, SealError) as e:
            raise _err(e)
        print("imported %s %s (kid %s)" % (what, args.name, sign.kid(kr.public_key(args.name)).hex()))
    if recs:
        store = open_ctb(args)
        verdicts = submit(store, recs)
        for rec, v in zip(recs, verdicts):
            council, pk, role = rec.fields
            print("certificate: %s is %s of %s (%s)" % (sign.kid(pk).hex(), R.ROLES[role], council.hex(),
                                                        "already here" if v.code == ctb.DUPLICATE else "stored"))


def parse_public_or_none(text):
    try:
        return parse_public(text)
    except ValueError:
        return None


def _member_records(store, pk):
    return [raw for _, raw in store.records(types=[R.MEMBER]) if R.parse(raw).fields[1] == pk]


def cmd_cert(args):
    from pen.economy import qr
    try:
        pk = keyring(args).public_key(args.name)
    except (KeyError, ValueError, SealError) as e:
        raise _err(e)
    raws = _member_records(open_ctb(args), pk)
    if not raws:
        raise PenError("no member certificate for %s in this CTB (a council makes one with: pen council certify)"
                       % args.name)
    if str(args.out).lower().endswith((".png", ".svg")):
        if len(raws) > 1:
            raise PenError("%d certificates: a QR image holds one; write a text file instead" % len(raws))
        _write_payload(args.out, qr.record_payload(raws[0]))
    else:
        _write_payload(args.out, "\n".join(qr.record_payload(r) for r in raws))


def cmd_memberships(args):
    try:
        pk = keyring(args).public_key(args.name)
    except (KeyError, ValueError, SealError) as e:
        raise _err(e)
    store = open_ctb(args)
    held = membership.of(store, sign.kid(pk))
    if not held:
        print("%s holds no membership in this CTB" % args.name)
    for council, role in held:
        c = store.get(b"C" + council)
        print("%-10s of %s (%s)" % (R.ROLES[role], ctb.council_name(c) if c else council.hex(), council.hex()))
