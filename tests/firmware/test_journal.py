"""Custody journal: power cut at any byte of any write, then recovery.

Invariants checked after every recovery:
- every put() that returned True and was not followed by a completed
  delete() is there, with its exact bytes (nothing acknowledged is lost);
- nothing that a completed delete() removed comes back;
- nothing appears that was never put.
"""
import fwpath  # noqa: F401  (protocol/ and firmware/ on the path)
import random

import pytest

from pen_node.journal import Journal, MemStorage, PowerCut, MAX_LIVE


def rid(i):
    return i.to_bytes(16, "big")


def run_trial(seed, size=4096, ops=300):
    r = random.Random(seed)
    st = MemStorage(size)
    j = Journal(st)
    acked = {}  # rid -> data: put returned True, no completed delete since
    deleted = set()
    ever = {}
    # cut after a random number of bytes somewhere in this trial's writes
    st.cut_after = r.randrange(1, 30000)
    n = 0
    try:
        for _ in range(ops):
            if acked and r.random() < 0.45:
                k = r.choice(sorted(acked))
                j.delete(k)  # may be cut: then it may or may not have happened
                del acked[k]
                deleted.add(k)
            else:
                n += 1
                data = bytes(r.getrandbits(8) for _ in range(r.randrange(20, 140)))
                ever[rid(n)] = data
                if j.put(rid(n), data, 1):
                    acked[rid(n)] = data
    except PowerCut:
        pass
    cut = st.cut_after == 0
    st.cut_after = None
    j2 = Journal(st)
    for k, data in acked.items():
        assert k in j2.live, "acknowledged record lost (seed %d)" % seed
        assert j2.live[k][1] == data
    for k in j2.live:
        assert k in ever, "record that was never put (seed %d)" % seed
        assert j2.live[k][1] == ever[k]
    return cut, len(j2.live), j2.gen


def test_power_cut_at_random_bytes_loses_nothing_acknowledged():
    cuts = 0
    compactions = 0
    for seed in range(400):
        cut, live, gen = run_trial(seed)
        cuts += cut
        compactions += gen > 1
    assert cuts > 300  # the trials really did cut power, mostly mid-run
    assert compactions > 100  # and many of them after or during a compaction


def test_cut_during_compaction_keeps_old_region():
    # fill, then cut at every byte offset of the compaction's writes
    for cut in range(0, 2400, 7):
        st = MemStorage(2048)
        j = Journal(st)
        held = {}
        i = 0
        while True:
            i += 1
            if not j.put(rid(i), bytes([i]) * 60, 1):
                break
            held[rid(i)] = bytes([i]) * 60
            if len(held) > 3:
                k = min(held)
                j.delete(k)
                del held[k]
            if j.gen > 1:
                break
        st.cut_after = cut
        try:
            for k in range(40):
                i += 1
                if j.put(rid(i), bytes([i & 255]) * 60, 1):
                    held[rid(i)] = bytes([i & 255]) * 60
                k0 = min(held)
                j.delete(k0)
                del held[k0]
        except PowerCut:
            pass
        st.cut_after = None
        j2 = Journal(st)
        for k, v in held.items():
            assert j2.live.get(k, (0, None))[1] == v


def test_full_journal_refuses_new_work_and_keeps_old():
    st = MemStorage(4096)
    j = Journal(st)
    taken = []
    for i in range(1, 200):
        if not j.put(rid(i), b"x" * 100, 1):
            break
        taken.append(rid(i))
    assert 0 < len(taken) < 199
    before = bytes(st.buf)
    assert j.put(rid(999), b"y" * 100, 1) is False
    assert bytes(st.buf) == before  # a refusal writes nothing
    j2 = Journal(st)
    assert sorted(j2.live) == sorted(taken)
    # space comes back when the next hop acks
    j2.delete(taken[0])
    assert j2.put(rid(999), b"y" * 100, 1)


def test_max_live_bounds_entries():
    j = Journal(MemStorage(65536))
    ok = [j.put(rid(i), b"z", 1) for i in range(MAX_LIVE + 5)]
    assert ok.count(True) == MAX_LIVE


def test_corrupt_byte_in_middle_stops_replay_there():
    st = MemStorage(4096)
    j = Journal(st)
    for i in range(1, 6):
        j.put(rid(i), bytes([i]) * 30, 1)
    # flip a byte inside the third entry's payload
    third = 12 + 2 * (8 + 1 + 16 + 32) + 8 + 17 + 5
    st.buf[third] ^= 0xFF
    j2 = Journal(st)
    assert sorted(j2.live) == [rid(1), rid(2)]


def test_blank_storage_formats_and_reopens_empty():
    st = MemStorage(1024)
    assert Journal(st).live == {}
    assert Journal(st).live == {}
    assert st.buf[:4] == b"PENJ"


@pytest.mark.micropython
def test_journal_trials_under_micropython(mpy):
    code = """
from pen_node.journal import Journal, MemStorage, PowerCut
import random
lost = 0
for seed in range(40):
    random.seed(seed)
    st = MemStorage(2048)
    j = Journal(st)
    st.cut_after = random.getrandbits(14) + 1
    acked = {}
    n = 0
    try:
        for _ in range(120):
            if acked and random.getrandbits(1):
                k = list(acked)[0]
                j.delete(k); del acked[k]
            else:
                n += 1
                k = bytes([0] * 14 + [n >> 8, n & 255])
                d = bytes([n & 255]) * (20 + random.getrandbits(6))
                if j.put(k, d, 1):
                    acked[k] = d
    except PowerCut:
        pass
    st.cut_after = None
    j2 = Journal(st)
    for k in acked:
        if j2.live.get(k, (0, None))[1] != acked[k]:
            lost += 1
print("lost", lost)
"""
    assert mpy(code).split() == ["lost", "0"]
