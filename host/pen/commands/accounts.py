"""pen accounts: roll-ups of the CTB by account (product id) prefix."""
import json

from pen.cli import PenError
from pen.commands._common import open_ctb
from pen.commands.plan import check_level, check_plot, year
from pen.economy import accounts as ACC
from pen.economy.plan import PlanError
from pen_protocol import ids


def register(sub):
    p = sub.add_parser("accounts", help="accounts rolled up by product id prefix: table, JSON or picture")
    p.add_argument("--prefix", default="", help="only accounts under this category")
    p.add_argument("--level", type=int, help="roll up to this many digits (2 segment ... 8 commodity)")
    p.add_argument("--year", type=year, help="only tokens issued under proposals of this year")
    p.add_argument("--by", choices=("account", "product"), default="account")
    p.add_argument("--json", action="store_true")
    p.add_argument("--plot", metavar="FILE", help="write a picture (.svg or .png)")
    p.set_defaults(func=cmd_accounts)


def cmd_accounts(args):
    check_level(args.level)
    check_plot(args.plot)
    if args.prefix:
        try:
            ids.pack(args.prefix)
        except ids.ProductIdError as e:
            raise PenError("bad --prefix %r: %s" % (args.prefix, e))
    rows, total = ACC.rollup(open_ctb(args), args.prefix, args.level, args.year, args.by)
    if args.json:
        print(json.dumps({"rows": rows, "total": total}, indent=1))
    else:
        for r in rows:
            print("%-12s %-34s %10d credits  %d tokens" % (r["account"], r["name"][:34], r["credits"], r["tokens"]))
        print("%-12s %-34s %10d credits" % ("total", "", total))
    if args.plot:
        if not rows:
            raise PenError("no accounts to draw")
        try:
            ACC.plot(rows, args.plot, "Accounts%s%s" % (" %d" % args.year if args.year else "",
                                                        " under " + args.prefix if args.prefix else ""))
        except PlanError as e:
            raise PenError(str(e))
