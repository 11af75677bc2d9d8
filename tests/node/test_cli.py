"""pen node serve|sync|status as a user runs them."""
import json
import os
import subprocess
import sys
import time

import pytest

from pen.cli import main
from pen.node.client import NodeClient
from pen.samples import economy
from pen.store import SQLiteCTB

from .conftest import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def served(tmp_path):
    _, ordered, _ = economy()
    a = tmp_path / "a.sqlite"
    s = SQLiteCTB(a)
    s.submit([r.raw for r in ordered])
    digest = s.state_digest()
    s.close()
    # the syncing side's key, named on the served node as a peer (as an operator does)
    assert main(["--home", str(tmp_path), "keys", "new", "b-node"]) == 0
    assert main(["--home", str(tmp_path), "node", "peer", "add", "b-node", "--db", str(a)]) == 0
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, "host"), os.path.join(ROOT, "protocol")]),
               PEN_HOME=str(tmp_path / "home"))
    p = subprocess.Popen([sys.executable, "-m", "pen.cli", "node", "serve", "--listen", "127.0.0.1:%d" % port,
                          "--db", str(a)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    deadline = time.time() + 20
    while True:
        try:
            NodeClient(url, timeout_s=1).status()
            break
        except Exception:
            if time.time() > deadline or p.poll() is not None:
                p.kill()
                pytest.fail("pen node serve did not start: %s" % p.stdout.read().decode())
            time.sleep(0.1)
    yield url, digest
    p.terminate()
    p.wait(10)


def test_sync_then_status_show_the_peer(served, tmp_path, capsys):
    url, digest = served
    b = str(tmp_path / "b.sqlite")
    capsys.readouterr()
    assert main(["--home", str(tmp_path), "node", "sync", "--peer", url, "--db", b, "--key", "b-node"]) == 0
    out = capsys.readouterr().out
    assert "pulled 20" in out and digest in out
    assert main(["--home", str(tmp_path), "node", "status", "--db", b, "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["state_digest"] == digest and st["peers"][url]["last_error"] is None
    assert st["peers"][url]["backlog"] == 0 and st["peers"][url]["last_ok"]
    assert main(["--home", str(tmp_path), "node", "status", "--url", url, "--json"]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["state_digest"] == digest and remote["records"] == 20
    assert main(["--home", str(tmp_path), "node", "status", "--db", b]) == 0
    assert "last successful sync" in capsys.readouterr().out
    # a running node tells an anonymous client its summary only, a listed peer everything
    assert main(["--home", str(tmp_path), "node", "status", "--url", url]) == 0
    assert "the public summary" in capsys.readouterr().out
    assert main(["--home", str(tmp_path), "node", "status", "--url", url, "--key", "b-node", "--json"]) == 0
    assert "peers" in json.loads(capsys.readouterr().out)


def test_sync_with_an_unreachable_peer_is_one_line_and_exit_1(tmp_path, capsys):
    url = "http://127.0.0.1:%d" % free_port()
    assert main(["--home", str(tmp_path), "keys", "new", "b-node"]) == 0
    capsys.readouterr()
    assert main(["--home", str(tmp_path), "node", "sync", "--peer", url, "--db", str(tmp_path / "b.sqlite"),
                 "--key", "b-node"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "pen: error: sync failed with 1 of 1 peers"


def test_serve_refuses_a_bad_listen_address(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "node", "serve", "--listen", "nowhere"]) == 1
    assert "bad --listen 'nowhere'" in capsys.readouterr().err


def test_sync_with_a_key_the_peer_does_not_list_fails_with_the_reason(served, tmp_path, capsys):
    url, digest = served
    assert main(["--home", str(tmp_path), "keys", "new", "stranger"]) == 0
    capsys.readouterr()
    assert main(["--home", str(tmp_path), "node", "sync", "--peer", url, "--db", str(tmp_path / "c.sqlite"),
                 "--key", "stranger", "--json"]) == 1
    res = json.loads(capsys.readouterr().out)
    assert res[0]["error"].startswith("unknown-peer")


def test_peer_add_list_remove(tmp_path, capsys):
    db = str(tmp_path / "n.sqlite")
    key = "ab" * 32
    assert main(["--home", str(tmp_path), "node", "peer", "add", key, "--name", "east", "--role", "bridge",
                 "--rate", "5", "--db", db]) == 0
    assert main(["--home", str(tmp_path), "node", "peer", "add", key, "--burst", "7", "--db", db]) == 0
    capsys.readouterr()
    assert main(["--home", str(tmp_path), "node", "peer", "list", "--json", "--db", db]) == 0
    assert json.loads(capsys.readouterr().out) == [{"key": key, "name": "east", "role": "bridge", "rate": 5.0,
                                                    "burst": 7}]
    assert main(["--home", str(tmp_path), "node", "peer", "add", "cd" * 31 + "zz", "--db", db]) == 1
    assert "bad peer key" in capsys.readouterr().err
    assert main(["--home", str(tmp_path), "node", "peer", "add", key, "--rate", "0", "--db", db]) == 1
    assert "rate must be above 0" in capsys.readouterr().err
    assert main(["--home", str(tmp_path), "node", "peer", "remove", key, "--db", db]) == 0
    assert main(["--home", str(tmp_path), "node", "peer", "remove", key, "--db", db]) == 1
    assert "not on this node's peer list" in capsys.readouterr().err


def test_a_bridge_without_its_key_says_how_to_make_and_allow_it(tmp_path, capsys):
    assert main(["--home", str(tmp_path), "bridge", "--serial", "/dev/null", "--peer", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert "no key named 'bridge'" in err and "pen node peer add KEY --role bridge" in err
