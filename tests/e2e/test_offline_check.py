"""A store device checks a token offline: its CTB copy plus the village
spent set, asked from the node over the link (pen token check --spent-from)."""
import os
import subprocess

import pytest

from pen.bridge.serial import FdPort, ask, open_pty
from pen.cli import main
from pen.samples import economy
from pen.store import SQLiteCTB
from pen_protocol import link as L
from village_kit import node_command, node_env, payments

pytestmark = pytest.mark.micropython


def test_a_token_spent_in_the_village_is_invalid_offline_and_unseen_is_indeterminable(tmp_path, capsys):
    k, ordered, n = economy()
    copy = SQLiteCTB(tmp_path / "ctb.sqlite")  # the store's last CTB copy: tokens usable, not spent
    copy.submit([r.raw for r in ordered[:-3]])
    issues, users, uses = payments(2)
    copy.submit([r.raw for r in issues + users])
    copy.close()
    master, slave = open_pty()
    node = subprocess.Popen(node_command(tmp_path / "node.journal").split(), stdin=master, stdout=master,
                            env=node_env())
    os.close(master)
    tty = os.ttyname(slave)
    try:
        def check(u):
            rc = main(["--home", str(tmp_path), "token", "check", "--token", u.fields[0].hex(), "--spent-from", tty])
            return rc, capsys.readouterr().out
        rc, out = check(uses[0])
        assert rc == 0 and out.startswith("INDETERMINABLE: copy-may-be-old")
        # another store of the village takes carlos's payment with token 0: the node sees it spent
        assert ask(FdPort(slave), L.SUBMIT, uses[0].raw).kind == L.SUBMIT | L.RESPONSE
        rc, out = check(uses[0])
        assert rc == 0 and out.startswith("INDETERMINABLE: spent-in-village")  # heard, unverified
        rc, out = check(uses[1])
        assert rc == 0 and out.startswith("INDETERMINABLE")
    finally:
        node.kill()
        node.wait()
        os.close(slave)


def test_no_node_on_the_port_is_one_clear_line(tmp_path, capsys):
    rc = main(["--home", str(tmp_path), "token", "check", "--token", "00" * 8, "--spent-from", "/dev/nonexistent-pen"])
    assert rc == 1 and "village node on /dev/nonexistent-pen" in capsys.readouterr().err
