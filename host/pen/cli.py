"""The `pen` command. Each command group lives in its own module exposing
`register(subparsers)`; handlers return an exit code. Any PenError becomes
one clear line on stderr and a non-zero exit."""
import argparse
import importlib
import sys

# module paths of command groups; each has register(subparsers)
COMMANDS = (
    "pen.commands.keys",
    "pen.commands.council",
    "pen.commands.votation",
    "pen.commands.token",
    "pen.commands.ctb",
    "pen.commands.bench",
    "pen.commands.demo",
)


class PenError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def build_parser():
    p = argparse.ArgumentParser(prog="pen", description="Pen: offline payments and council votations over LoRa")
    p.add_argument("--home", help="Pen data folder (default: $PEN_HOME or ~/.pen)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except PenError as e:
        print("pen: error: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
