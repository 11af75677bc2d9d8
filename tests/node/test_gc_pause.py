"""The cycle collector is paused while a batch runs (pen.store._pause_gc) and
must come back exactly as it was: after a stored batch, a refused one, a
batch whose write fails, with the collector off before the batch, and when
batches of several threads overlap. Nothing is kept from it: a cycle made
during a batch is collected after."""
import gc
import threading
import weakref

import pytest

from pen import store as S
from pen.store import BatchRejected, SQLiteCTB


@pytest.fixture
def ctb_(tmp_path, payments):
    base, _ = payments
    s = SQLiteCTB(tmp_path / "ctb.db", clock=lambda: 1795000000)
    s.submit([r.raw for r in base])
    yield s
    s.close()


@pytest.fixture(autouse=True)
def collector_on():
    gc.enable()
    yield
    gc.enable()
    assert S._gc_paused[0] == 0


def test_collector_back_on_after_a_stored_batch(ctb_, payments):
    seen = []
    ctb_.listeners.append(lambda added: seen.append(gc.isenabled()))
    ctb_.submit([r.raw for r in payments[1][:40]])
    assert gc.isenabled()
    assert seen == [True]  # listeners run after the batch, with the collector on


def test_collector_paused_during_the_batch(ctb_, payments):
    during = []

    def follow(state, verdicts):
        during.append(gc.isenabled())
        return []
    ctb_.submit_follow([r.raw for r in payments[1][:40]], follow)
    assert during == [False]
    assert gc.isenabled()


def test_collector_back_on_after_a_refused_batch(ctb_, payments):
    raws = [r.raw for r in payments[1][:40]]
    bad = bytearray(raws[5])
    bad[-1] ^= 1  # a forged signature
    raws[5] = bytes(bad)
    with pytest.raises(BatchRejected) as e:
        ctb_.submit(raws)
    assert e.value.verdict.reason == "bad-signature"
    assert gc.isenabled()
    assert ctb_.count() == len(payments[0])  # nothing stored


def test_collector_back_on_after_a_failing_write(ctb_, payments):
    def broken(rows):
        raise OSError("disk gone")
    ctb_._insert_records = broken
    with pytest.raises(OSError, match="disk gone"):
        ctb_.submit([r.raw for r in payments[1][:40]])
    assert gc.isenabled()
    assert ctb_.count() == len(payments[0])


def test_collector_left_off_when_it_was_off(ctb_, payments):
    gc.disable()
    ctb_.submit([r.raw for r in payments[1][:40]])
    assert not gc.isenabled()


def test_overlapping_batches_of_threads_leave_it_on(tmp_path, payments):
    base, recs = payments
    stores = []
    for i in range(2):
        s = SQLiteCTB(tmp_path / ("ctb%d.db" % i), clock=lambda: 1795000000)
        s.submit([r.raw for r in base])
        stores.append(s)
    inside = threading.Barrier(2)
    states = []

    def follow(state, verdicts):
        inside.wait(timeout=30)  # both batches under way at once
        states.append(gc.isenabled())
        inside.wait(timeout=30)
        return []
    done = []

    def run(s, part):
        s.submit_follow([r.raw for r in part], follow)
        done.append(gc.isenabled())
    ts = [threading.Thread(target=run, args=(stores[i], recs[i * 60:(i + 1) * 60])) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert states == [False, False]
    assert len(done) == 2 and gc.isenabled()
    for s in stores:
        assert s.count() == len(base) + 60
        s.close()


def test_a_cycle_made_in_a_batch_is_collected_after(ctb_, payments):
    class Node:
        pass
    refs = []

    def follow(state, verdicts):
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle only the collector frees
        refs.append(weakref.ref(a))
        return []
    ctb_.submit_follow([r.raw for r in payments[1][:40]], follow)
    gc.collect()
    assert refs[0]() is None
