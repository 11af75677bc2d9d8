"""The first hour of a new user, as issue 14 found it: a mistyped Pen folder
silently became an empty CTB, error lines showed exception class names,
refused commands used up serials, `ctb export DIR` left DIR.tmp, a past
deadline, a zero quantity and a huge value were accepted or failed as
encoder errors. Each test tries the mistake and asserts the exact answer."""
import re
import sqlite3

import pytest

from pen import cli
from pen.cli import main, sentence, PenError
from pen.store import SQLiteCTB
from pen_protocol import cbor, records

CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|Exit)\b")
MAX = "18446744073709551615"


class Pen:
    def __init__(self, home, capsys):
        self.home, self.capsys = str(home), capsys

    def __call__(self, *argv):
        rc = main(["--home", self.home] + list(argv))
        out, err = self.capsys.readouterr()
        return rc, out, err

    def ok(self, *argv):
        rc, out, err = self(*argv)
        assert rc == 0, (argv, err)
        return out

    def fails(self, *argv):
        rc, out, err = self(*argv)
        lines = err.strip().splitlines()
        assert rc == 1 and len(lines) == 1 and lines[0].startswith("pen: error: "), (argv, err)
        assert not CLASS_NAME.search(lines[0]), lines[0]
        return lines[0][len("pen: error: "):]

    def count(self):
        return SQLiteCTB(self.home + "/ctb.sqlite").count()


@pytest.fixture
def pen(tmp_path, capsys):
    p = Pen(tmp_path / "home", capsys)
    p.ok("init")
    for k in ("fed", "coop"):
        p.ok("keys", "new", k)
    p.ok("council", "create", "--key", "fed", "--name", "Federation", "--kind", "federation")
    p.ok("council", "create", "--key", "coop", "--name", "Coop", "--kind", "production", "--parent", "fed")
    p.ok("ctb", "init", "--name", "Valley", "--founder", "fed", "--founder", "coop")
    return p


def test_a_pen_folder_that_does_not_exist_is_an_error_and_is_not_created(tmp_path, capsys, monkeypatch):
    typo = tmp_path / "pen-valey"
    p = Pen(typo, capsys)
    assert p.fails("token", "check", "--token", "00000000:1") == (
        "there is no Pen folder at %s; create it with: pen --home %s init" % (typo, typo))
    assert p.fails("keys", "new", "coop").startswith("there is no Pen folder")
    monkeypatch.setenv("PEN_HOME", str(typo))
    assert main(["ctb", "status"]) == 1
    assert capsys.readouterr().err == "pen: error: there is no Pen folder at %s; create it with: pen init\n" % typo
    assert not typo.exists()


def test_init_creates_the_folder_once(tmp_path, capsys):
    p = Pen(tmp_path / "a" / "b", capsys)
    assert "created the Pen folder" in p.ok("init")
    assert "exists already" in p.ok("init")
    assert (tmp_path / "a" / "b").stat().st_mode & 0o077 == 0  # keys live there: private to the user


def test_refused_commands_do_not_use_up_serials(pen):
    # a token on a proposal nobody approved is refused by the validator after a serial was picked
    pen.ok("proposal", "create", "--key", "coop", "--year", "2026", "--line", "40141600:1:100")
    for _ in range(3):
        assert "rejected" in pen.fails("token", "issue", "--key", "coop", "--value", "100", "--proposal", "coop:1")
    pen.ok("votation", "open", "--key", "coop", "--subject", "approve", "--about", "coop:1")
    for who in ("fed", "coop"):
        pen.ok("votation", "cast", "--key", who, "--votation", "coop:1", "--choice", "yes")
    pen.ok("votation", "close", "--key", "coop", "--votation", "coop:1")
    out = pen.ok("token", "issue", "--key", "coop", "--value", "100", "--proposal", "coop:1")
    assert re.search(r"token [0-9a-f]{8}:1 issued", out), out  # serial 1, not 4
    out = pen.ok("proposal", "create", "--key", "coop", "--year", "2026", "--line", "40141600:1:100")
    assert re.search(r"proposal [0-9a-f]{8}:2:", out), out


def test_serials_picked_for_one_batch_are_all_different(pen):
    from pen.commands import _common
    from pen.keys import Keyring
    store = SQLiteCTB(pen.home + "/ctb.sqlite")
    kid = Keyring(pen.home).load("coop").kid
    _common.begin(None)
    assert [_common.fresh_serial(store, kid, b"T") for _ in range(3)] == [1, 2, 3]
    _common.begin(None)  # a new command: nothing was stored, nothing was used up
    assert _common.fresh_serial(store, kid, b"T") == 1


def test_export_to_a_folder_is_refused_and_leaves_no_tmp(pen, tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    assert pen.fails("ctb", "export", str(d)) == "%s is a folder; give the name of a file to write" % d
    assert list(tmp_path.glob("*.tmp")) == [] and list(d.iterdir()) == []
    missing = tmp_path / "no" / "such" / "all.pen"
    assert pen.fails("ctb", "export", str(missing)) == "cannot write %s: no such file or directory" % missing
    assert not (tmp_path / "no").exists()


def test_a_past_deadline_is_refused(pen):
    before = pen.count()
    assert pen.fails("votation", "open", "--key", "coop", "--subject", "other", "--about", "a well",
                     "--deadline", "2001-01-01") == (
        "the deadline 2001-01-01 has passed; a votation needs a deadline in the future")
    assert pen.count() == before


@pytest.mark.parametrize("line,what", [
    ("40141600:0:100", "the quantity in line '40141600:0:100' must be a positive number of units, at most %s (not 0)"),
    ("40141600:5:0", "the credits in line '40141600:5:0' must be a positive number of credits, at most %s (not 0)"),
    ("40141600:-1:100", "the quantity in line '40141600:-1:100' must be a positive number of units, at most %s (not -1)"),
    ("40141600:1:" + "9" * 25, "the credits in line '40141600:1:%s' must be a positive number of credits, at most %%s "
                                "(not %s)" % ("9" * 25, "9" * 25)),
])
def test_zero_negative_and_huge_proposal_lines_are_refused(pen, line, what):
    before = pen.count()
    assert pen.fails("proposal", "create", "--key", "coop", "--year", "2026", "--line", line) == what % MAX
    assert pen.count() == before


@pytest.mark.parametrize("value", ["0", "-5", str(2 ** 64), "9" * 30])
def test_a_value_out_of_range_is_a_range_error(pen, value):
    assert pen.fails("token", "issue", "--key", "coop", "--value", value, "--proposal", "coop:1") == (
        "--value must be a positive number of credits, at most %s (not %s)" % (MAX, value))


def test_a_huge_year_is_a_sentence_not_an_encoder_error(pen):
    assert pen.fails("proposal", "create", "--key", "coop", "--year", str(2 ** 70), "--line", "40141600:1:1") == (
        "a number is too large to record (at most %s)" % MAX)


def test_a_damaged_ctb_file_is_a_sentence(pen, tmp_path, monkeypatch):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("PEN_DB", str(bad))
    assert pen.fails("ctb", "status") == "the CTB database cannot be used: file is not a database"


def test_a_ctb_path_in_a_missing_folder_is_refused_not_created(pen, tmp_path, monkeypatch):
    monkeypatch.setenv("PEN_DB", str(tmp_path / "typo" / "ctb.sqlite"))
    assert pen.fails("ctb", "status") == "there is no folder %s for the CTB database %s" % (
        tmp_path / "typo", tmp_path / "typo" / "ctb.sqlite")
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("exc,text", [
    (sqlite3.OperationalError("database is locked"), "the CTB database cannot be used: database is locked"),
    (cbor.CBORError("map longer than input"), "the data is not valid Pen data: map longer than input"),
    (records.RecordError("bad-field: council.name"), "a record is malformed: bad-field: council.name"),
    (FileExistsError(17, "File exists", "/x/y"), "cannot use /x/y: file exists"),
    (FileNotFoundError(2, "No such file or directory", "/x"), "cannot use /x: no such file or directory"),
    (KeyError("no key named 'x'"), "something went wrong: no key named 'x' (PEN_DEBUG=1 shows where)"),
    (RuntimeError("boom"), "something went wrong: boom (PEN_DEBUG=1 shows where)"),
    (PenError("said already"), "said already"),
])
def test_every_exception_becomes_a_sentence_without_its_class_name(exc, text):
    assert sentence(exc) == text
    assert not CLASS_NAME.search(sentence(exc))


def test_an_unexpected_error_is_one_line(monkeypatch, capsys, tmp_path):
    def boom(args):
        raise OSError("line one\nline two")
    monkeypatch.setattr(cli, "build_parser", lambda: _parser_with(boom))
    assert main(["x"]) == 1
    assert capsys.readouterr().err == "pen: error: something went wrong: line one line two (PEN_DEBUG=1 shows where)\n"


def _parser_with(func):
    p = cli.Parser(prog="pen")
    p.add_argument("--home")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("x").set_defaults(func=func)
    return p


def test_refs_may_name_a_local_key(pen):
    out = pen.ok("proposal", "create", "--key", "coop", "--year", "2026", "--line", "40141600:1:100")
    kid_ref = re.search(r"proposal ([0-9a-f]{8}:1)", out).group(1)
    a = pen.ok("votation", "open", "--key", "coop", "--subject", "approve", "--about", "coop:1")
    assert kid_ref.split(":")[0] in a
    assert pen.fails("token", "show", "nobody:1") == (
        "bad token ref 'nobody:1': expected KEY:SERIAL, KID:SERIAL or 16 hex digits")
