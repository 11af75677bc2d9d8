"""`pen bridge` killed at random instants (SIGKILL, a real process) and
restarted, with a unix-port bridge node behind a pty and a CTB node on
loopback: every record the node delivered reaches the CTB, each once, and no
receipt marked sent is ever sent down again."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from village_kit import ctb_node, node_command, node_env, python_env, PYTHON  # noqa: E402

from pen.bridge.queue import BridgeQueue  # noqa: E402
from pen.bridge.serial import FdPort, LinkClient, ask, open_pty  # noqa: E402
from pen_protocol import cbor, ctb, link as L, records as R  # noqa: E402

pytestmark = pytest.mark.micropython  # the bridge node is the unix-port firmware

TRIALS = 12
PER_TRIAL = 12  # payments the store hands in before each bridge run (the node's journal holds 48)


class Store:
    """The store's side of the link while no bridge runs: SUBMIT, and
    STATUS; events meant for a bridge are left to the next bridge (the node
    re-sends them on PENDING)."""

    def __init__(self, fd):
        self.port = FdPort(fd)
        self.link = LinkClient()

    def request(self, kind, payload=b""):
        return ask(self.port, kind, payload, 10.0, self.link)


def bridge_proc(home, tty, url, db):
    cmd = [PYTHON, "-c", "import sys; from pen.cli import main; sys.exit(main())", "--home", str(home), "bridge",
           "--serial", tty, "--peer", url, "--db", str(db)]
    return subprocess.Popen(cmd, env=python_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_at_random(p, rng):
    """SIGKILL p: a fifth of the time anywhere in its start-up, otherwise
    within 0.3 s of its first log line (it has the node's HELLO and is
    asking PENDING: storing, acking, uploading, sending receipts down)."""
    if rng.random() < 0.2:
        time.sleep(rng.uniform(0.0, 0.6))
    else:
        p.stderr.readline()
        time.sleep(rng.uniform(0.0, 0.3))
    p.send_signal(signal.SIGKILL)
    p.wait()


def sent_ids(db):
    q = BridgeQueue(db)
    ids = {bytes(r[0]) for r in q.db.execute("SELECT id FROM downlink WHERE sent IS NOT NULL")}
    q.close()
    return ids


def uplink_rows(db):
    if not db.exists():
        return 0
    q = BridgeQueue(db)
    n = q.db.execute("SELECT COUNT(*) FROM uplink").fetchone()[0]
    q.close()
    return n


def trace_lines(path):
    return Path(path).read_text().split("\n")[:-1] if Path(path).exists() else []


def test_bridge_killed_at_random_instants_loses_nothing_and_duplicates_nothing(tmp_path):
    seed = int(os.environ.get("PEN_KILL_SEED", random.randrange(1 << 30)))
    print("\nkill seed %d (PEN_KILL_SEED=%d repeats the instants)" % (seed, seed))
    rng = random.Random(seed)
    srv, store, uses = ctb_node(tmp_path / "ctb.sqlite", TRIALS * PER_TRIAL + PER_TRIAL)
    master, slave = open_pty()
    trace = tmp_path / "node.trace"
    node = subprocess.Popen(node_command(tmp_path / "node.journal", "--trace", str(trace)).split(),
                            stdin=master, stdout=master, env=node_env())
    os.close(master)
    tty = os.ttyname(slave)
    shop = Store(slave)  # the test keeps this end open: the node never sees the pty hang up
    db = tmp_path / "bridge.sqlite"
    submitted = []
    todo = list(uses)
    snapshots = []  # (trace lines so far, receipt ids marked sent) after each kill
    mid = 0  # kills that caught the bridge mid-way (some records or receipts through, not all)
    try:
        for trial in range(TRIALS + 1):
            for u in todo[:PER_TRIAL]:
                f = shop.request(L.SUBMIT, u.raw)
                if f.kind == L.ERROR:  # journal full: the store keeps it and tries after the next bridge run
                    assert f.payload[0] == L.E_REFUSED
                    break
                submitted.append(u)
                todo.remove(u)
            p = bridge_proc(tmp_path, tty, srv.url, db)
            if trial < TRIALS:
                kill_at_random(p, rng)
                snapshots.append((len(trace_lines(trace)), sent_ids(db)))
                mid += 0 < uplink_rows(db) < len(submitted) or 0 < len(snapshots[-1][1]) < len(submitted)
                continue
            # the last run goes to the end: everything uploaded, every receipt down
            end = time.monotonic() + 40
            while time.monotonic() < end:
                done = all(ctb.token_state(store.get(b"T" + u.fields[0])) == ctb.ACCOUNTED for u in submitted)
                if done and db.exists():
                    q = BridgeQueue(db)
                    done = q.down_backlog() == 0 and q.backlog(srv.url) == 0
                    q.close()
                    if done:
                        break
                time.sleep(0.2)
            p.send_signal(signal.SIGTERM)
            p.wait(10)
            assert done, p.stderr.read().decode()[-2000:]
        status = dict((k, v) for k, v in cbor.loads(shop.request(L.STATUS).payload))
    finally:
        node.kill()
        node.wait()
        srv.stop()
    # nothing lost: every payment the node took reached the CTB and was accounted
    assert len(submitted) >= TRIALS * PER_TRIAL // 2
    assert status["journal_used"] == 0
    # nothing duplicated: one USE and one ACCOUNTED per token in the CTB, one row per record in the bridge
    for u in submitted:
        hist = [R.parse(raw).type for raw in store.token_history(u.fields[0])]
        assert hist.count(R.USE) == 1 and hist.count(R.ACCOUNTED) == 1
    q = BridgeQueue(db)
    assert q.db.execute("SELECT COUNT(*) FROM uplink").fetchone()[0] == len(submitted)
    receipts = {bytes(r[0]) for r in q.db.execute("SELECT id FROM downlink WHERE sent IS NOT NULL")}
    assert len(receipts) == len(submitted)
    # every receipt reached the node, and none marked sent went down again after that
    lines = trace_lines(trace)
    down = [ln.split()[1] for ln in lines if ln.startswith("6 ")]
    assert {bytes.fromhex(x) for x in down} == receipts
    for at, sent in snapshots:
        later = {bytes.fromhex(ln.split()[1]) for ln in lines[at:] if ln.startswith("6 ")}
        assert not (later & sent)
    print("%d payments, %d kills (%d mid-way: some records or receipts through, not all), %d DOWNLINK requests (refused ones included) for %d receipts; none after it was marked sent" % (
        len(submitted), TRIALS, mid, len(down), len(receipts)))
