"""`pen bridge --pty-command` starts the node itself; what the node took
before (its journal file survives the node's restart) goes up; `pen bridge
status` shows the peer, its backlog and the last upload."""
import json
import signal
import subprocess
import time

import pytest

from pen_protocol import ctb, link as L
from village_kit import ctb_node, node_command, node_env, python_env, PYTHON

pytestmark = pytest.mark.micropython
PEN = [PYTHON, "-c", "import sys; from pen.cli import main; sys.exit(main())"]


def test_pen_bridge_uploads_what_the_node_held_across_restarts_and_status_shows_it(tmp_path):
    srv, store, uses = ctb_node(tmp_path / "ctb.sqlite", 3)
    journal = tmp_path / "node.journal"
    # a store hands in three payments while no bridge PC is attached, over a pipe; then the node stops
    wire = b"".join(L.encode(L.SUBMIT, i + 1, u.raw) for i, u in enumerate(uses))
    run = subprocess.run(node_command(journal).split(), input=wire, capture_output=True, env=node_env(), timeout=30)
    out = run.stdout
    oks = [f for f in L.Decoder().feed(out) if isinstance(f, L.Frame) and f.kind == L.SUBMIT | L.RESPONSE]
    assert len(oks) == 3, run.stderr
    db = tmp_path / "bridge.sqlite"
    p = subprocess.Popen(PEN + ["--home", str(tmp_path), "bridge", "--pty-command", node_command(journal),
                                "--peer", srv.url, "--db", str(db)], env=dict(python_env(), **node_env()),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 30
        while not all(ctb.token_state(store.get(b"T" + u.fields[0])) == ctb.ACCOUNTED for u in uses):
            assert time.monotonic() < end and p.poll() is None, p.stderr.read().decode()[-2000:]
            time.sleep(0.1)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        srv.stop()
    st = json.loads(subprocess.run(PEN + ["bridge", "status", "--db", str(db), "--json"], env=python_env(),
                                   capture_output=True, text=True, check=True).stdout)
    peer = st["peers"][srv.url]
    assert st["uplink_records"] == 3 and peer["backlog"] == 0 and peer["last_upload"] is not None
    assert peer["outcomes"] == {"accepted": 3}
    table = subprocess.run(PEN + ["bridge", "status", "--db", str(db)], env=python_env(), capture_output=True,
                           text=True, check=True).stdout
    assert srv.url in table and "accepted 3" in table
