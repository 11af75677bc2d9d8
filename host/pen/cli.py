"""The `pen` command. Each command group lives in its own module exposing
`register(subparsers)`; handlers return an exit code. Any PenError becomes
one clear line on stderr and a non-zero exit."""
import argparse
import importlib
import os
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
    "pen.sim.command",
    "pen.commands.node",
    "pen.commands.bridge",
    "pen.commands.store",
    "pen.commands.register",
    "pen.commands.products",
    "pen.commands.publish",
    "pen.commands.plan",
    "pen.commands.accounts",
    "pen.commands.book",
)


class PenError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


class Parser(argparse.ArgumentParser):
    """Usage errors as one line too (subcommand parsers inherit this class)."""

    def error(self, message):
        self.exit(2, "pen: error: %s (see: %s --help)\n" % (message, self.prog))


def build_parser():
    p = Parser(prog="pen", description="Pen: offline payments and council votations over LoRa")
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
    except Exception as e:  # never a traceback for the user, unless asked
        if os.environ.get("PEN_DEBUG"):
            raise
        print("pen: error: %s: %s (PEN_DEBUG=1 shows the traceback)" % (type(e).__name__, e), file=sys.stderr)
        return 1
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
