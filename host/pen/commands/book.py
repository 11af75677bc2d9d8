"""pen book print|pay: the credit book of a user without a device."""
from pen import build as B
from pen.cli import PenError
from pen.commands._common import open_ctb, keyring, submit, parse_ref, fmt_ref
from pen.commands.keys import read_password
from pen.keys import SealError, unseal_payload, sealed_public_key, SEALED_PAYLOAD
from pen_protocol import check, ctb, ids, sign


def register(sub):
    p = sub.add_parser("book", help="credit books: printed tokens, signed with the holder's password")
    s = p.add_subparsers(dest="book_cmd", metavar="ACTION")
    s.required = True
    pr = s.add_parser("print", help="a PDF with the sealed key and one QR per token")
    pr.add_argument("--user", required=True, help="the holder's sealed key name (pen keys seal NAME)")
    pr.add_argument("--tokens", nargs="+", help="token refs (default: every token USABLE by the holder)")
    pr.add_argument("--out", required=True, metavar="FILE.pdf")
    pr.add_argument("--forget", action="store_true",
                    help="then remove the sealed key from this machine: the book holds the only copy")
    pr.set_defaults(func=cmd_print)
    pa = s.add_parser("pay", help="at a store: sign a USE from a credit book with the holder's password")
    pa.add_argument("--book", required=True, help="the book's key QR: an image, a pen:sealed: payload or a file")
    pa.add_argument("--token", required=True, help="token ref, pen:token: payload or an image of its QR")
    pa.add_argument("--product", required=True)
    pa.add_argument("--account", required=True)
    pa.set_defaults(func=cmd_pay)


def _sealed(args, name):
    kr = keyring(args)
    try:
        return kr.sealed_payload(name)
    except KeyError as e:
        if kr.path(name).exists():
            raise PenError("key %s is not sealed: seal it first with: pen keys seal %s" % (name, name))
        raise PenError(str(e).strip('"'))
    except ValueError as e:
        raise PenError(str(e))


def cmd_print(args):
    from pen.economy import book
    if not str(args.out).lower().endswith(".pdf"):
        raise PenError("--out must be a .pdf file")
    payload = _sealed(args, args.user)
    pk = sealed_public_key(payload)
    store = open_ctb(args)
    if args.tokens:
        refs = [parse_ref(t, "token ref") for t in args.tokens]
    else:
        refs = [k[1:] for k, t in store.state_prefix(b"T") if ctb.user(t) == pk and not ctb.uses(t)]
    if not refs:
        raise PenError("no usable tokens for %s" % args.user)
    rows = []
    for ref in refs:
        t = store.get(b"T" + ref)
        if t is None:
            raise PenError("unknown token %s" % fmt_ref(ref))
        if ctb.user(t) != pk or ctb.token_state(t) != ctb.USABLE:
            raise PenError("token %s is not USABLE by %s (%s)" % (fmt_ref(ref), args.user, ctb.token_state(t)))
        c = store.get(b"C" + ctb.token_issuer(t))
        rows.append((ref, ctb.token_value(t), ctb.council_name(c) if c else ctb.token_issuer(t).hex()))
    g = store.get(b"G")
    try:
        book.make_pdf(args.out, args.user, sign.kid(pk), payload, rows, ctb.economy_name(store) or "")
    except book.BookError as e:
        raise PenError(str(e))
    except OSError as e:
        raise PenError("cannot write %s: %s" % (args.out, e.strerror))
    print("credit book for %s: %d tokens, %d credits -> %s" % (args.user, len(rows), sum(r[1] for r in rows),
                                                               args.out))
    if args.forget:
        kr = keyring(args)
        kr.sealed_path(args.user).unlink()
        kr.import_public(args.user, pk)
        print("the sealed key left this machine; %s stays as a contact (public key only)" % args.user)


def _one(source, prefix, what):
    from pen.economy import qr
    try:
        texts = qr.read_source(source)
    except qr.QRError as e:
        raise PenError(str(e))
    found = [t for t in texts if t.startswith(prefix)]
    if len(found) != 1:
        raise PenError("expected one %s in %s, found %d" % (what, source, len(found)))
    return found[0]


def cmd_pay(args):
    from pen.economy import qr
    sealed = _one(args.book, SEALED_PAYLOAD, "sealed key")
    if args.token.startswith(qr.TOKEN_PAYLOAD) or args.token.lower().endswith(qr.IMAGE_EXT):
        try:
            ref, _ = qr.parse_token_payload(_one(args.token, qr.TOKEN_PAYLOAD, "token"))
        except qr.QRError as e:
            raise PenError(str(e))
    else:
        ref = parse_ref(args.token, "token ref")
    try:
        ids.pack(args.product), ids.pack(args.account)
    except ids.ProductIdError as e:
        raise PenError("bad product id: %s" % e)
    store = open_ctb(args)
    from pen.economy.catalogue import CatalogueError, check_paid_product
    try:
        check_paid_product(store, args.product)
    except CatalogueError as e:
        raise PenError(str(e))
    t = store.get(b"T" + ref)
    try:
        pk = sealed_public_key(sealed)
    except SealError as e:
        raise PenError(str(e))
    if t is not None and ctb.user(t) != pk:
        raise PenError("token %s is not this book's (its user is another key)" % fmt_ref(ref))
    # the attendant checks the token with the latest copy of the CTB before Carlos types his password
    ans = check.check_token(store, ref, [])
    if ans.verdict == check.INVALID:
        raise PenError("token %s is invalid here: %s%s; nothing signed" % (
            fmt_ref(ref), ans.reason, " (" + ans.detail + ")" if ans.detail else ""))
    pw = read_password("password: ")
    try:
        user = unseal_payload(sealed, pw)
    except SealError as e:
        raise PenError("%s; nothing signed" % e)
    rec = B.use(user, ref, args.product, args.account)
    del user
    v = submit(store, [rec])[0]
    if v.code == ctb.CONFLICT:
        raise PenError("double spend: token %s was already used; both uses are kept as evidence" % fmt_ref(ref))
    print("token %s (%s before paying: %s) USED for product %s, credited to account %s, signed with the book's key"
          % (fmt_ref(ref), ans.verdict, ans.reason, args.product, args.account))
