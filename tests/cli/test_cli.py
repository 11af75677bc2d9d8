"""The `pen` command: a whole flow through it, and every kind of bad input
giving one clear line, a non-zero exit and nothing stored."""
import json
import os
import subprocess
import sys

import pytest

from pen.cli import main
from pen.store import SQLiteCTB
from pen_protocol import records as R


class Pen:
    def __init__(self, home, capsys):
        self.home = str(home)
        self.capsys = capsys

    def __call__(self, *argv, ok=True):
        rc = main(["--home", self.home] + list(argv))
        out, err = self.capsys.readouterr()
        if ok:
            assert rc == 0, (argv, out, err)
        return rc, out, err

    def fails(self, *argv):
        rc, out, err = self(*argv, ok=False)
        assert rc != 0, (argv, out)
        lines = [x for x in err.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("pen: error:"), err
        return lines[0]

    def count(self):
        return SQLiteCTB(os.path.join(self.home, "ctb.sqlite")).count()


@pytest.fixture
def pen(tmp_path, capsys):
    return Pen(tmp_path, capsys)


def ref_from(out):
    for word in out.split():
        if ":" in word and len(word.split(":")[0]) == 8:
            return word.rstrip(":,")
    raise AssertionError(out)


def found(pen):
    for name in ("fed", "coop", "hub"):
        pen("keys", "new", name)
    pen("council", "create", "--key", "fed", "--name", "Federation", "--kind", "federation")
    pen("council", "create", "--key", "coop", "--name", "Coop", "--kind", "production", "--parent", "fed")
    pen("council", "create", "--key", "hub", "--name", "Hub", "--kind", "production", "--parent", "Federation")
    pen("ctb", "init", "--name", "Valley", "--founder", "fed", "--founder", "coop", "--founder", "hub")


def approve(pen):
    _, out, _ = pen("proposal", "create", "--key", "coop", "--year", "2026", "--line", "40141600:200:30000")
    prop = ref_from(out)
    _, out, _ = pen("votation", "open", "--key", "coop", "--subject", "approve", "--about", prop)
    vot = ref_from(out)
    for who in ("fed", "coop"):
        pen("votation", "cast", "--key", who, "--votation", vot, "--choice", "yes")
    _, out, _ = pen("votation", "close", "--key", "coop", "--votation", vot)
    assert "PASSED" in out
    return prop, vot


def test_whole_token_life_through_the_command(pen, tmp_path):
    found(pen)
    prop, vot = approve(pen)
    _, out, _ = pen("token", "issue", "--key", "coop", "--value", "30000", "--proposal", prop)
    tok = ref_from(out)
    pen("token", "assign", "--key", "coop", "--token", tok, "--user", "coop")
    pen("token", "export", tok, str(tmp_path / "chain.pen"))
    _, out, _ = pen("token", "check", "--token", tok, "--live")
    assert out.startswith("VALID")
    pen("token", "use", "--key", "coop", "--token", tok, "--product", "40141600", "--account", "40141600")
    _, out, _ = pen("token", "show", tok)
    assert "USED" in out
    rc, out, _ = pen("token", "check", "--token", tok, ok=False)
    assert rc == 2 and out.startswith("INVALID")
    line = pen.fails("token", "use", "--key", "coop", "--token", tok, "--product", "40171500", "--account", "40171500")
    assert "double spend" in line
    _, out, _ = pen("ctb", "status")
    assert "books balance" in out
    pen("votation", "export", vot, str(tmp_path / "vot.pen"))
    _, out, _ = pen("votation", "verify", str(tmp_path / "vot.pen"))
    assert "verified" in out and "2 yes" in out
    pen("ctb", "export", str(tmp_path / "all.pen"))
    other = Pen(tmp_path / "other", pen.capsys)
    other("init")
    _, out, _ = other("ctb", "import", str(tmp_path / "all.pen"))
    assert "imported" in out
    assert other.count() == pen.count()


def test_second_vote_rejected_by_the_command(pen):
    found(pen)
    _, out, _ = pen("votation", "open", "--key", "fed", "--subject", "other", "--about", "a well")
    vot = ref_from(out)
    pen("votation", "cast", "--key", "hub", "--votation", vot, "--choice", "yes")
    line = pen.fails("votation", "cast", "--key", "hub", "--votation", vot, "--choice", "no")
    assert "already voted" in line


@pytest.mark.parametrize("argv, words", [
    (["token", "issue", "--key", "coop", "--value", "10", "--proposal", "zz"], "bad authority ref"),
    (["token", "issue", "--key", "coop", "--value", "-5", "--proposal", "00000000:1"], "positive"),
    (["token", "issue", "--key", "nobody", "--value", "5", "--proposal", "00000000:1"], "no key named"),
    (["token", "assign", "--key", "coop", "--token", "00000000:9", "--user", "coop"], "unknown-token"),
    (["token", "use", "--key", "coop", "--token", "00000000:9", "--product", "4", "--account", "40"], "product id"),
    (["token", "show", "00000000:9"], "unknown token"),
    (["votation", "cast", "--key", "coop", "--votation", "00000000:9", "--choice", "yes"], "unknown-votation"),
    (["votation", "open", "--key", "coop", "--subject", "exchange", "--about", "lots"], "AMOUNT:ACCOUNT"),
    (["proposal", "create", "--key", "coop", "--year", "2026", "--line", "4:1:1"], "bad line"),
    (["ctb", "import", "/nonexistent/file"], "cannot read"),
    (["council", "create", "--key", "coop", "--name", "Again", "--kind", "production"], "key-exists"),
])
def test_bad_input_is_one_line_and_stores_nothing(pen, argv, words):
    found(pen)
    before = pen.count()
    line = pen.fails(*argv)
    assert words in line
    assert pen.count() == before


def test_malformed_and_foreign_files_are_refused(pen, tmp_path):
    found(pen)
    before = pen.count()
    junk = tmp_path / "junk.pen"
    junk.write_bytes(b"\xff\x00garbage")
    assert "not a Pen record file" in pen.fails("ctb", "import", str(junk))
    from pen_protocol import cbor
    bad = tmp_path / "bad.pen"
    bad.write_bytes(cbor.dumps(["pen-records/1", [b"\x0a\x83\x01"]]))
    assert "nothing imported" in pen.fails("ctb", "import", str(bad))
    assert "not a Pen record file" in pen.fails("votation", "verify", str(junk))
    assert pen.count() == before


def test_wrong_key_cannot_act_for_a_council(pen):
    found(pen)
    prop, vot = approve(pen)
    _, out, _ = pen("token", "issue", "--key", "coop", "--value", "5", "--proposal", prop)
    tok = ref_from(out)
    before = pen.count()
    assert "bad-signature" in pen.fails("token", "assign", "--key", "hub", "--token", tok, "--user", "hub")
    assert "not-issuer" in pen.fails("token", "issue", "--key", "hub", "--value", "5", "--proposal", prop)
    assert pen.count() == before


def test_demo_json_reports_both_examples_and_balance():
    out = subprocess.run([sys.executable, "-m", "pen.cli", "demo", "--json"], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["balanced"] is True
    assert [e["name"] for e in summary["examples"]] == ["example-1", "example-2", "village-mesh"]
    assert all(e["ok"] for e in summary["examples"])
    v = summary["village"]
    assert v["delivered_to_bridge"] == v["accounted"] == v["receipts_returned"] == v["payments"]
    assert v["upload_attempts_while_offline"] > 0 and v["double_spend_evidence"] is True


def test_bench_sizes_json_has_use_and_vote_within_budget(capsys):
    assert main(["bench", "sizes", "--json"]) == 0
    frames = json.loads(capsys.readouterr().out)["frames"]
    assert frames["use"]["bytes"] <= 96 and frames["vote"]["bytes"] <= 96
    assert set(frames["use"]["airtime_ms"]) == {"sf9-bw125", "sf11-bw250"}
    assert frames["use"]["airtime_ms"]["sf9-bw125"] == 533.5


def test_ctb_rebuild_fixes_state_an_older_pen_left_and_lists_what_it_set_aside(pen, tmp_path):
    from pen.store import RULES_KEY
    found(pen)
    prop, vot = approve(pen)
    _, out, _ = pen("ctb", "rebuild")
    assert "unchanged" in out and "set aside" not in out
    s = SQLiteCTB(os.path.join(pen.home, "ctb.sqlite"))
    good = s.state_digest()
    s._begin()  # as an older validator might have left it: a proposal worth more, no rules version
    s._exec("UPDATE state SET value=? WHERE key=(SELECT key FROM state WHERE key>=? AND key<? LIMIT 1)",
            (b"\x80", b"P", b"Q"))
    s._exec("DELETE FROM local WHERE key=?", (RULES_KEY,))
    s._commit()
    s.close()
    _, out, err = pen("ctb", "status")  # opening derives it again by itself, and says so
    assert "set aside" not in out and "derived again under this Pen's rules" in err
    _, out, err = pen("ctb", "status")
    assert "derived again" not in err  # once
    assert SQLiteCTB(os.path.join(pen.home, "ctb.sqlite")).state_digest() == good
    s = SQLiteCTB(os.path.join(pen.home, "ctb.sqlite"))
    s._begin()  # now a record these rules refuse, taken by an older Pen: a vote with a broken signature
    rid, raw = [(bytes(i), bytes(r)) for i, r in s._all("SELECT id, raw FROM records WHERE type=?", (R.VOTE,))][0]
    s._exec("UPDATE records SET raw=? WHERE id=?", (raw[:-1] + bytes((raw[-1] ^ 1,)), rid))
    s._exec("UPDATE local SET value='0' WHERE key=?", (RULES_KEY,))
    s._commit()
    s.close()
    _, out, err = pen("ctb", "status")
    assert "set aside: " in out and "2 records they refuse were set aside" in err  # the vote, and the close counting it
    _, out, _ = pen("ctb", "rebuild")
    assert ("set aside before (rules 1) %s: bad-signature" % rid.hex()) in out
