"""The ledger rules through the `pen` command: every founder consents to
genesis, ADMIT is held by the federation and moves the membership epoch, and
an honest council does not vote on a votation pinned to an older epoch."""
from test_cli import Pen, found, ref_from

import pytest


@pytest.fixture
def pen(tmp_path, capsys):
    return Pen(tmp_path, capsys)


def test_genesis_needs_every_founders_key(pen):
    for name in ("fed", "coop"):
        pen("keys", "new", name)
    pen("council", "create", "--key", "fed", "--name", "Federation", "--kind", "federation")
    pen("council", "create", "--key", "coop", "--name", "Coop", "--kind", "production", "--parent", "fed")
    before = pen.count()
    line = pen.fails("ctb", "init", "--name", "Valley", "--founder", "fed", "--founder", "coop", "--founder", "hub")
    assert "hub" in line
    assert pen.count() == before
    _, out, _ = pen("ctb", "init", "--name", "Valley", "--founder", "fed", "--founder", "coop")
    assert "each signing its consent" in out


def _admit_shop(pen):
    pen("keys", "new", "shop")
    pen("council", "create", "--key", "shop", "--name", "Shop", "--kind", "production", "--parent", "fed")
    line = pen.fails("votation", "open", "--key", "coop", "--subject", "admit", "--about", "shop")
    assert "not-the-federation" in line
    _, out, _ = pen("votation", "open", "--key", "fed", "--subject", "admit", "--about", "shop")
    vot = ref_from(out)
    for who in ("fed", "coop"):
        pen("votation", "cast", "--key", who, "--votation", vot, "--choice", "yes")
    _, out, _ = pen("votation", "close", "--key", "fed", "--votation", vot)
    assert "PASSED" in out
    return vot


def test_admit_moves_the_epoch_and_old_votations_get_no_honest_votes(pen, tmp_path):
    found(pen)
    _, out, _ = pen("votation", "open", "--key", "hub", "--subject", "other", "--about", "a well")
    old = ref_from(out)
    vot = _admit_shop(pen)
    _, out, _ = pen("ctb", "status")
    assert "membership epoch 1: 4 councils" in out
    before = pen.count()
    line = pen.fails("votation", "cast", "--key", "coop", "--votation", old, "--choice", "yes")
    assert "epoch 0, not the current 1" in line
    assert pen.count() == before
    _, out, _ = pen("votation", "open", "--key", "hub", "--subject", "other", "--about", "a bigger well")
    assert "electorate 4 councils, majority needs 3 yes" in out
    pen("votation", "export", vot, str(tmp_path / "admit.pen"))
    _, out, _ = pen("votation", "verify", str(tmp_path / "admit.pen"))
    assert "verified" in out


def _kid(out):
    return out.split("kid ")[1].split()[0]


def test_a_founder_elsewhere_consents_with_pen_ctb_consent(tmp_path, capsys):
    a, b = Pen(tmp_path / "a", capsys), Pen(tmp_path / "b", capsys)
    a("init")  # a home other than the default one is made first
    b("init")
    kids = {}
    for who, name, kind, home in (("fed", "Federation", "federation", a), ("hub", "Hub", "production", b)):
        _, out, _ = home("keys", "new", who)
        kids[who] = _kid(out)
        home("council", "create", "--key", who, "--name", name, "--kind", kind)
    b("ctb", "export", str(tmp_path / "hub.pen"))
    a("ctb", "import", str(tmp_path / "hub.pen"))
    founders = ["--founder", kids["fed"], "--founder", kids["hub"]]
    _, out, _ = b("ctb", "consent", "--key", "hub", "--name", "Valley", *founders, "--time", "1795000000")
    consent = out.strip()
    assert consent.startswith(kids["hub"] + ":")
    before = a.count()
    # without the consent, or with it for another time, nothing is founded
    assert "no --consent" in a.fails("ctb", "init", "--name", "Valley", *founders, "--time", "1795000000")
    assert "missing-consent" in a.fails("ctb", "init", "--name", "Valley", *founders, "--time", "1795000001",
                                        "--consent", consent)
    assert "KID:SIGNATURE" in a.fails("ctb", "init", "--name", "Valley", *founders, "--consent", "zz:00")
    assert a.count() == before
    _, out, _ = a("ctb", "init", "--name", "Valley", *founders, "--time", "1795000000", "--consent", consent)
    assert "founded by 2 councils" in out
    _, out, _ = a("ctb", "status")
    assert "membership epoch 0: 2 councils" in out
