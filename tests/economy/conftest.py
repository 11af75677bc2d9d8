"""A small federation made through the `pen` command itself."""
import io
import os
import sys

import pytest

from pen.cli import main
from pen.store import SQLiteCTB


class Pen:
    def __init__(self, home, capsys):
        self.home = str(home)
        self.capsys = capsys
        os.makedirs(self.home, exist_ok=True)  # a Pen folder exists before the first command (as after pen init)

    def __call__(self, *argv, ok=True, stdin=None):
        old = sys.stdin
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        try:
            rc = main(["--home", self.home] + [str(a) for a in argv])
        except SystemExit as e:  # a usage error: argparse exits (one line, see pen.cli.Parser)
            rc = e.code
        finally:
            sys.stdin = old
        out, err = self.capsys.readouterr()
        if ok:
            assert rc == 0, (argv, out, err)
        return rc, out, err

    def out(self, *argv, **kw):
        return self(*argv, **kw)[1]

    def fails(self, *argv, stdin=None):
        """One `pen: error:` line, a non-zero exit and nothing stored."""
        before = self.count()
        rc, out, err = self(*argv, ok=False, stdin=stdin)
        assert rc != 0, (argv, out)
        lines = [x for x in err.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("pen: error:"), err
        assert self.count() == before
        return lines[0]

    def count(self):
        p = os.path.join(self.home, "ctb.sqlite")
        if not os.path.exists(p):
            return 0
        s = SQLiteCTB(p)
        try:
            return s.count()
        finally:
            s.close()

    def store(self):
        return SQLiteCTB(os.path.join(self.home, "ctb.sqlite"))


def ref_in(out):
    for word in out.replace("(", " ").replace(")", " ").split():
        w = word.rstrip(":,")
        if ":" in w and len(w.split(":")[0]) == 8:
            return w
    raise AssertionError(out)


@pytest.fixture
def pen(tmp_path, capsys):
    return Pen(tmp_path / "home", capsys)


@pytest.fixture(scope="session")
def fed_home(tmp_path_factory):
    """The federation made once (through the command) and copied for each test."""
    import gc
    home = tmp_path_factory.mktemp("fed") / "home"
    capsys = type("NoCapture", (), {"readouterr": lambda self: ("", "")})()
    _found(Pen(home, capsys))
    gc.collect()  # close the stores the commands opened before copying their files
    return home


@pytest.fixture
def fed(pen, fed_home):
    """fed (federation) over cons (consumption), prod and mill (production);
    the sample catalogue; ana a proposer of cons."""
    import shutil
    shutil.copytree(fed_home, pen.home, dirs_exist_ok=True)
    pen.capsys.readouterr()  # drop what making the template printed, if it ran under this test's capture
    return pen


def _found(pen):
    for k in ("fed", "cons", "prod", "mill", "ana"):
        pen("keys", "new", k)
    pen("council", "create", "--key", "fed", "--name", "Fed", "--kind", "federation")
    pen("council", "create", "--key", "cons", "--name", "Cons", "--kind", "consumption", "--parent", "fed")
    pen("council", "create", "--key", "prod", "--name", "Prod", "--kind", "production", "--parent", "fed")
    pen("council", "create", "--key", "mill", "--name", "Mill", "--kind", "production", "--parent", "fed")
    pen("ctb", "init", "--name", "Test", "--founder", "fed", "--founder", "cons", "--founder", "prod",
        "--founder", "mill")
    pen("products", "import", "--key", "fed", "sample")
    pen("council", "certify", "--key", "cons", "--member", "ana", "--role", "proposer")
    return pen


def approve(pen, key, proposal):
    """Put a proposal to the vote; fed, cons and prod vote yes. The votation
    runs inside the proposal's year."""
    kid, serial = proposal.split(":")
    store = pen.store()
    year = store.get(b"P" + bytes.fromhex(kid) + int(serial).to_bytes(4, "big"))[3]
    store.close()
    out = pen.out("votation", "open", "--key", key, "--subject", "approve", "--about", proposal,
                  "--deadline", "%d-12-01" % year)
    v = ref_in(out)
    for k in ("fed", "cons", "prod"):
        pen("votation", "cast", "--key", k, "--votation", v, "--choice", "yes")
    pen("votation", "close", "--key", key, "--votation", v, "--time", "%d-06-01" % year)
