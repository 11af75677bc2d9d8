"""The SQLite CTB: WAL, schema migrations, atomic batches, and power loss
(SIGKILL at random instants) leaving whole batches only."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
import random

import pytest

from pen.samples import economy
from pen.store import SQLiteCTB, SCHEMA_VERSION, MIGRATIONS
from pen_protocol import cbor, ctb, records as R

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_wal_mode_and_schema_version(tmp_path):
    s = SQLiteCTB(tmp_path / "c.sqlite")
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.schema_version() == SCHEMA_VERSION


def test_migrates_an_old_file_keeping_its_records(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version=1")
    _, ordered, _ = economy()
    r = ordered[0]
    db.execute("INSERT INTO records(id, type, token, raw, received) VALUES (?,?,?,?,?)", (r.id, r.type, None, r.raw, 0))
    db.commit()
    db.close()
    s = SQLiteCTB(path)
    assert s.schema_version() == SCHEMA_VERSION
    assert s.get_record(r.id) == r.raw
    s.local_set("x", 1)  # the table version 2 added
    assert s.local_get("x") == "1"


def test_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "new.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=%d" % (SCHEMA_VERSION + 1))
    db.close()
    with pytest.raises(RuntimeError, match="newer"):
        SQLiteCTB(path)


def test_state_survives_reopen_and_matches_a_replay(tmp_path):
    _, ordered, _ = economy()
    s = SQLiteCTB(tmp_path / "c.sqlite")
    s.submit([r.raw for r in ordered])
    digest = s.state_digest()
    s.close()
    s = SQLiteCTB(tmp_path / "c.sqlite")
    assert s.state_digest() == digest
    assert replay_matches(s)


def replay_matches(store):
    """The stored state equals what the validator derives from the stored records."""
    mem = ctb.MemoryState()
    raws = [raw for _, raw in store.records()]
    ov, verdicts = ctb.apply_batch(mem, raws)
    assert all(v.ok for v in verdicts)
    stored = {k: v for k, v in store.db.execute("SELECT key, value FROM state")}
    derived = {k: cbor.dumps(v) for k, v in ov.kv.items()}
    return stored == derived


WRITER = r"""
import sys, os
sys.path[:0] = [os.path.join(sys.argv[2], "host"), os.path.join(sys.argv[2], "protocol")]
from pen.store import SQLiteCTB
from pen.samples import economy
from pen import build as B
k, ordered, n = economy()
s = SQLiteCTB(sys.argv[1])
if s.count() == 0:
    s.submit([r.raw for r in ordered[:-1]])
hub = k["supply-hub"]
start = int(sys.argv[3])
print("ready", flush=True)
i = start
while True:
    batch = [B.publication(hub, i * 40 + j + 10, "price", b"\x40", {1: j}).raw for j in range(40)]
    s.submit(batch)
    i += 1
"""


@pytest.mark.slow
def test_power_loss_leaves_whole_batches_only(tmp_path):
    path = str(tmp_path / "crash.sqlite")
    rnd = random.Random(1)
    base = len(economy()[1]) - 1
    start = 0
    for trial in range(12):
        p = subprocess.Popen([sys.executable, "-c", WRITER, path, ROOT, str(start)], stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(rnd.uniform(0.02, 0.25))
        p.send_signal(signal.SIGKILL)
        p.wait()
        s = SQLiteCTB(path)
        n = s.count()
        assert (n - base) % 40 == 0, "a half batch survived: %d records" % n
        assert replay_matches(s)
        start = (n - base) // 40 + 1000 * (trial + 1)
        s.close()
