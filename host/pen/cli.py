"""The `pen` command. Each command group lives in its own module exposing
`register(subparsers)`; handlers return an exit code. Any PenError becomes
one clear line on stderr and a non-zero exit."""
import argparse
import importlib
import os
import sys

# module paths of command groups; each has register(subparsers)
COMMANDS = (
    "pen.commands.init",
    "pen.commands.keys",
    "pen.commands.council",
    "pen.commands.votation",
    "pen.commands.token",
    "pen.commands.ctb",
    "pen.commands.board",
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
    "pen.commands.power",
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


def sentence(e):
    """An exception as a sentence a user understands: what went wrong and
    with what, never the exception's class name."""
    import sqlite3
    from pen_protocol import cbor, records
    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)  # KeyError's str() adds quotes
    msg = msg or "no details"
    if isinstance(e, PenError):
        return msg
    if isinstance(e, sqlite3.Error):
        return "the CTB database cannot be used: %s" % msg
    if isinstance(e, cbor.CBORError):
        if "64-bit range" in msg:
            return "a number is too large to record (at most 18446744073709551615)"
        return "the data is not valid Pen data: %s" % msg
    if isinstance(e, records.RecordError):
        return "a record is malformed: %s" % msg
    if isinstance(e, OSError) and e.strerror:
        if e.filename:
            return "cannot use %s: %s" % (e.filename, e.strerror.lower())
        return e.strerror.lower()
    if type(e).__module__.startswith("psycopg"):
        return "the PostgreSQL database cannot be used: %s" % msg
    return "something went wrong: %s (PEN_DEBUG=1 shows where)" % msg


def one_line(text):
    """An error line is one line, however many the message had."""
    return " ".join(text.split())


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from pen.commands import _common
    _common.begin(args)
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # never a traceback for the user, unless asked
        if os.environ.get("PEN_DEBUG") and not isinstance(e, PenError):
            raise
        print("pen: error: %s" % one_line(sentence(e)), file=sys.stderr)
        return 1
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
