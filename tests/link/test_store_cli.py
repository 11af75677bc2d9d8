"""`pen store` as a shopkeeper runs it: pair by the code on the node's
console, pay, be killed between signing and the node's ack, resume, and list
receipts; the node reboots between commands (each spawns it on a pty)."""
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from conftest import MICROPYPATH
from kit import AirBridge, CTB_KEY, node_command, pairing_code, start_node, stop, token
from pen.commands._common import fmt_ref

pytestmark = pytest.mark.micropython
PEN = [sys.executable, "-c", "import sys; from pen.cli import main; sys.exit(main())"]


def pen(home, *args, timeout=90):
    env = dict(os.environ, MICROPYPATH=MICROPYPATH)
    if not home.exists():  # a store PC's home is made once, as a user does (pen init)
        subprocess.run(PEN + ["--home", str(home), "init"], check=True, capture_output=True, env=env)
    return subprocess.run(PEN + ["--home", str(home)] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=env)


class SilentNode:
    """A TCP far end that takes every byte and never answers: the store is
    killed while it waits for the node's ack."""

    def __init__(self):
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.port = self.srv.getsockname()[1]
        self.got = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        c, _ = self.srv.accept()
        while c.recv(4096):
            self.got.set()


def test_pay_killed_between_sign_and_ack_resumes_over_a_paired_link(tmp_path):
    home = tmp_path / "home"
    assert pen(home, "keys", "new", "carlos").returncode == 0
    assert pen(home, "store", "trust", CTB_KEY.public_key.hex()).returncode == 0
    pair_file = tmp_path / "pair.cbor"
    port, proc, console = start_node(tmp_path, "--pair", str(pair_file))  # the node's first boot shows a code
    code = pairing_code(console)
    stop(proc)
    port.close()
    air = AirBridge()
    link = "pty:" + node_command(tmp_path, "--pair", str(pair_file), "--air", str(air.port))
    r = pen(home, "store", "pair", "--link", link, "--code", code, "--key", "carlos")
    assert r.returncode == 0, r.stderr
    # the payment: signed, written to the outbox, sent ... and the store dies before any ack
    silent = SilentNode()
    ref = token(77)
    from pen.keys import Keyring
    air.users[ref] = Keyring(home).load("carlos").public_key
    p = subprocess.Popen(PEN + ["--home", str(home), "store", "pay", "--link", "tcp:127.0.0.1:%d" % silent.port,
                                "--key", "carlos", "--token", ref.hex(), "--product", "50100000",
                                "--account", "50100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert silent.got.wait(20)
    p.send_signal(signal.SIGKILL)
    p.wait(5)
    r = pen(home, "store", "receipts")
    assert r.stdout.count("payment ") == 1 and " signed" in r.stdout, r.stdout
    # a later boot of the store resumes it through the paired node (a new session, the node rebooted too)
    r = pen(home, "store", "resume", "--link", link, "--wait", "40")
    assert r.returncode == 0 and "accounted (receipt verified" in r.stdout, (r.stdout, r.stderr)
    assert "in the node's custody; waiting up to 40 s for its receipt" in r.stderr  # said while it waits
    assert len(air.receipts) == 1
    assert "accounted" in pen(home, "store", "receipts").stdout
    r = pen(home, "store", "check", "--link", link, "--token", ref.hex())  # over the paired link too
    air.close()
    assert r.returncode == 0 and r.stdout.startswith("token %s:" % fmt_ref(ref)), (r.stdout, r.stderr)
    assert "in the village" in r.stdout


@pytest.mark.slow  # ~9 s: it waits out the receipt it must refuse
def test_a_receipt_from_an_unpinned_key_is_not_accepted(tmp_path):
    home = tmp_path / "home"
    pen(home, "keys", "new", "carlos")
    pen(home, "store", "trust", os.urandom(32).hex())  # some other CTB node's key
    air = AirBridge()
    from pen.keys import Keyring
    ref = token(78)
    air.users[ref] = Keyring(home).load("carlos").public_key
    link = "pty:" + node_command(tmp_path, "--air", str(air.port))
    r = pen(home, "store", "pay", "--link", link, "--key", "carlos", "--token", ref.hex(), "--product", "50100000",
            "--account", "50100000", "--wait", "8")
    air.close()
    assert len(air.receipts) == 1  # the CTB signed, the receipt came down ...
    assert r.returncode == 3 and " sent" in r.stdout  # ... and the store did not take it


def test_store_without_a_pinned_key_refuses_to_pay(tmp_path):
    home = tmp_path / "home"
    pen(home, "keys", "new", "carlos")
    r = pen(home, "store", "pay", "--link", "tcp:127.0.0.1:1", "--key", "carlos", "--token", "00" * 8,
            "--product", "50100000", "--account", "50100000")
    assert r.returncode == 1 and "no CTB node key pinned" in r.stderr


def test_pair_with_a_wrong_code_says_so(tmp_path):
    home = tmp_path / "home"
    pen(home, "keys", "new", "carlos")
    pair_file = tmp_path / "pair.cbor"
    port, proc, console = start_node(tmp_path, "--pair", str(pair_file))
    code = pairing_code(console)
    stop(proc)
    link = "pty:" + node_command(tmp_path, "--pair", str(pair_file))
    r = pen(home, "store", "pair", "--link", link, "--code", "%06d" % ((int(code) + 1) % 10 ** 6), "--key", "carlos")
    assert r.returncode == 1 and "pair-failed" in r.stderr, r.stderr
