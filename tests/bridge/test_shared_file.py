"""The bridge's queue file is shared by threads (the gateway or serial link,
the upload worker) that open it together: a lock held by one must make the
other wait, never fail it, and a fault in an upload round must not end the
worker (it once died at start-up with "database is locked", and the bridge
kept taking custody of payments whose receipts could then never come)."""
import sqlite3
import threading

from pen import sqlwal
from pen.bridge.driver import UploadWorker
from pen.bridge.queue import BridgeQueue
from pen.samples import economy


def test_opening_waits_for_a_lock_instead_of_failing(tmp_path):
    path = tmp_path / "bridge.sqlite"
    holder = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE x (a)")
    holder.execute("BEGIN IMMEDIATE")  # another connection mid-write: the WAL switch gets SQLITE_BUSY
    holder.execute("INSERT INTO x VALUES (1)")
    # plain sqlite3 fails at once here (the busy handler is not used for the switch)
    plain = sqlite3.connect(str(path), timeout=5, isolation_level=None)
    try:
        plain.execute("PRAGMA journal_mode=WAL")
        raise AssertionError("expected SQLITE_BUSY: the test no longer shows the fault")
    except sqlite3.OperationalError as e:
        assert "locked" in str(e)
    plain.close()
    slept = []

    def sleep(s):  # the lock is released while the opener waits
        slept.append(s)
        if len(slept) == 3:
            holder.execute("COMMIT")

    q = sqlwal.connect(path, sleep=sleep)
    assert q.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(slept) == 3 and q.execute("SELECT a FROM x").fetchall() == [(1,)]


def test_a_lock_held_past_the_wait_is_an_error_not_a_hang(tmp_path):
    path = tmp_path / "bridge.sqlite"
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("CREATE TABLE x (a)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO x VALUES (1)")
    slept = []
    try:
        sqlwal.connect(path, busy_s=1.0, sleep=slept.append)
        raise AssertionError("opened a file another connection holds locked")
    except sqlite3.OperationalError as e:
        assert "locked" in str(e)
    assert 1.0 <= sum(slept) < 1.6  # it waited the bound, then said so


def test_threads_opening_a_new_queue_together_all_succeed(tmp_path):
    for round_ in range(20):
        path = tmp_path / ("q%d.sqlite" % round_)
        errors, go = [], threading.Barrier(4)

        def open_it():
            go.wait()
            try:
                BridgeQueue(path).accept(economy()[1][0].raw)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        ts = [threading.Thread(target=open_it) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errors == []
        assert BridgeQueue(path).has(economy()[1][0].id)


class _Peer:
    def __init__(self):
        self.got = []

    def submit(self, raws):
        self.got += raws
        return {"ok": True, "verdicts": [{"code": "accepted"} for _ in raws], "receipts": []}


def test_the_upload_worker_outlives_a_failed_round(tmp_path, monkeypatch):
    path = str(tmp_path / "bridge.sqlite")
    BridgeQueue(path).accept(economy()[1][0].raw)
    import pen.bridge.driver as D
    real, calls = D.BridgeQueue, []

    def flaky(*a, **kw):  # the first open fails as a locked file past its wait would
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real(*a, **kw)

    monkeypatch.setattr(D, "BridgeQueue", flaky)
    logs, peer = [], _Peer()
    w = UploadWorker(path, [("ctb", peer)], log=logs.append, idle_s=0.01)
    w.start()
    try:
        for _ in range(500):
            if peer.got:
                break
            threading.Event().wait(0.01)
    finally:
        w.stop()
    assert w.thread.is_alive() is False and w.faults == 1
    assert peer.got == [economy()[1][0].raw]  # the next round uploaded it
    assert any("upload round failed (OperationalError: database is locked)" in m for m in logs)
