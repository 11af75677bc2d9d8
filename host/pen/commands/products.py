"""pen products list|add|import|hours: the product catalogue (product
publications in the CTB; see pen/economy/catalogue.py)."""
import json
from pathlib import Path

from pen import build as B
from pen.cli import PenError
from pen.commands._common import open_ctb, load_key, submit, fresh_serial
from pen.economy import catalogue as CAT
from pen_protocol import ids

SAMPLE = Path(CAT.__file__).with_name("catalogue.csv")


def register(sub):
    p = sub.add_parser("products", help="the product catalogue: categories, analogue and work products")
    s = p.add_subparsers(dest="products_cmd", metavar="ACTION")
    s.required = True
    ls = s.add_parser("list", help="the catalogue as a tree")
    ls.add_argument("--under", help="only this category's subtree")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    a = s.add_parser("add", help="publish one product or category")
    a.add_argument("--key", required=True, help="publishing council's key name")
    a.add_argument("id", help="2-12 digits: segment, family, class, commodity, then a council's own suffix")
    a.add_argument("name")
    a.add_argument("--analogue", action="store_true", help="the most general form a consumer may choose")
    a.add_argument("--work", action="store_true", help="work, measured in medium-effort hours")
    a.add_argument("--unit")
    a.set_defaults(func=cmd_add)
    im = s.add_parser("import", help="publish a catalogue CSV (id,name,analogue,work,unit), all or nothing")
    im.add_argument("--key", required=True)
    im.add_argument("file", help="a CSV file, or 'sample' for the catalogue shipped with Pen")
    im.set_defaults(func=cmd_import)
    h = s.add_parser("hours", help="work in medium-effort hours and credits")
    h.add_argument("--hours", type=float, required=True)
    h.add_argument("--effort", type=float, default=1.0, help="1.0 is medium effort")
    h.add_argument("--per-hour", type=int, default=CAT.CREDITS_PER_HOUR)
    h.set_defaults(func=cmd_hours)


def cmd_list(args):
    cat = CAT.Catalogue.from_ctb(open_ctb(args))
    if args.under:
        _digits(args.under)
    if args.json:
        rows = [cat.entries[k].as_dict() for k in sorted(cat.entries) if k.startswith(args.under or "")]
        print(json.dumps(rows, indent=1))
        return 0
    if not len(cat):
        print("the catalogue is empty (publish one with: pen products import --key COUNCIL sample)")
        return 0
    for line in cat.tree_lines(args.under):
        print(line)


def _digits(text):
    try:
        return ids.pack(text)
    except ids.ProductIdError as e:
        raise PenError("bad product id %r: %s" % (text, e))


def _publish(args, rows):
    signer = load_key(args, args.key)
    store = open_ctb(args)
    recs = []
    for packed, content in rows:
        recs.append(B.publication(signer, fresh_serial(store, signer.kid, b"U"), "product", packed,
                                  content))
    submit(store, recs)
    return recs


def cmd_add(args):
    packed = _digits(args.id)
    try:
        content = CAT.content_for(args.name, args.analogue, args.work, args.unit)
    except CAT.CatalogueError as e:
        raise PenError(str(e))
    _publish(args, [(packed, content)])
    print("published %s %s (%s)" % (args.id, args.name, CAT.level_name(args.id)))


def cmd_import(args):
    path = SAMPLE if args.file == "sample" else Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise PenError("cannot read %s: %s" % (path, getattr(e, "strerror", None) or e))
    try:
        rows = CAT.read_csv(text)
    except CAT.CatalogueError as e:
        raise PenError("%s: %s (nothing published)" % (path, e))
    recs = _publish(args, [(packed, content) for _, packed, content in rows])
    print("published %d catalogue entries from %s" % (len(recs), path))


def cmd_hours(args):
    try:
        h = CAT.medium_effort_hours(args.hours, args.effort)
    except CAT.CatalogueError as e:
        raise PenError(str(e))
    if args.per_hour <= 0:
        raise PenError("--per-hour must be positive")
    print("%.2f medium-effort hours = %d credits (at %d credits an hour)" % (
        h, CAT.work_credits(args.hours, args.effort, args.per_hour), args.per_hour))
