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

from pen_node.journal import Journal, MAX_LIVE
from pen_node.memstorage import MemStorage, PowerCut
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
        assert k not in deleted, "deleted record came back (seed %d)" % seed
    # and the recovered journal goes on working where the cut left it
    assert j2.put(rid(10 ** 6), b"after", 1) or not j2.can_take(5)
    assert Journal(st).live.keys() == j2.live.keys()
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
    print("journal trials: 400, cut mid-run: %d, after a compaction: %d" % (cuts, compactions))


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
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage, PowerCut
import random
lost = back = cuts = gens = 0
for seed in range(60):
    random.seed(seed)
    st = MemStorage(2048)
    j = Journal(st)
    st.cut_after = random.getrandbits(14) + 1
    acked = {}
    gone = []
    n = 0
    try:
        for _ in range(120):
            if acked and random.getrandbits(1):
                k = list(acked)[0]
                j.delete(k); del acked[k]; gone.append(k)
            else:
                n += 1
                k = bytes([0] * 14 + [n >> 8, n & 255])
                d = bytes([n & 255]) * (20 + random.getrandbits(6))
                if j.put(k, d, 1):
                    acked[k] = d
    except PowerCut:
        pass
    cuts += st.cut_after == 0
    st.cut_after = None
    j2 = Journal(st)
    for k in acked:
        if j2.live.get(k, (0, None))[1] != acked[k]:
            lost += 1
    for k in gone:
        if k in j2.live:
            back += 1
    gens += j2.gen > 1
print("lost", lost, "back", back, "cuts", cuts, "compacted", gens)
"""
    out = mpy(code).split()
    assert out[:4] == ["lost", "0", "back", "0"]
    assert int(out[5]) > 30 and int(out[7]) > 10  # power really was cut, often after a compaction


def test_compaction_alternates_regions_and_each_reopen_sees_the_live_set():
    st = MemStorage(2048)
    j = Journal(st)
    held = {}
    bases = []
    for i in range(1, 400):
        assert j.put(rid(i), bytes([i & 255]) * 50, 1)
        held[rid(i)] = bytes([i & 255]) * 50
        if len(held) > 4:
            k = min(held)
            j.delete(k)
            del held[k]
        if not bases or bases[-1] != j.base:
            bases.append(j.base)
            j2 = Journal(st)  # a reboot right after the switch
            assert (j2.gen, j2.base) == (j.gen, j.base)
            assert {k: v[1] for k, v in j2.live.items()} == held
    assert bases[:4] == [0, 1024, 0, 1024]  # each compaction moves to the other half
    assert j.gen == len(bases)
    assert {k: v[1] for k, v in Journal(st).live.items()} == held


def test_refusal_at_max_live_writes_nothing_and_keeps_every_acknowledged_record():
    st = MemStorage(65536)
    j = Journal(st)
    for i in range(MAX_LIVE):
        assert j.put(rid(i), b"z" * 10, 1)
    before = bytes(st.buf)
    assert j.put(rid(MAX_LIVE), b"z" * 10, 1) is False
    assert bytes(st.buf) == before
    assert sorted(Journal(st).live) == [rid(i) for i in range(MAX_LIVE)]


def test_a_torn_put_is_not_live_after_recovery():
    for cut in range(1, 8 + 1 + 16 + 40):  # every byte of one entry but the last
        st = MemStorage(1024)
        j = Journal(st)
        j.put(rid(1), b"a" * 40, 1)
        st.cut_after = cut
        with pytest.raises(PowerCut):
            j.put(rid(2), b"b" * 40, 1)
        st.cut_after = None
        assert sorted(Journal(st).live) == [rid(1)]


def test_file_storage_formats_once_and_a_reopened_journal_recovers_from_the_file(tmp_path):
    from pen_node.journal import FileStorage
    path = str(tmp_path / "j.bin")
    st = FileStorage(path, 3000)
    assert (tmp_path / "j.bin").read_bytes() == b"\xff" * 3000  # erased-flash pattern, exact size
    j = Journal(st)
    for i in range(1, 6):
        assert j.put(rid(i), bytes([i]) * 40, 1)
    j.delete(rid(2))
    st.f.close()  # power off
    j2 = Journal(FileStorage(path, 3000))  # an existing file is opened, not formatted again
    assert {k: v[1] for k, v in j2.live.items()} == {rid(i): bytes([i]) * 40 for i in (1, 3, 4, 5)}


def test_a_journal_file_left_short_is_padded_and_recovers_what_it_still_holds(tmp_path):
    # regression: a file shorter than the journal (cut while it was being
    # made, or a smaller size before) made recovery index past its end
    from pen_node.journal import FileStorage
    path = tmp_path / "j.bin"
    st = FileStorage(str(path), 2048)
    j = Journal(st)
    j.put(rid(1), b"a" * 30, 1)
    j.put(rid(2), b"b" * 30, 1)
    st.f.close()
    keep = 12 + (8 + 1 + 16 + 30)  # the header and the first entry
    path.write_bytes(path.read_bytes()[:keep])  # the file ends where the second entry began
    j2 = Journal(FileStorage(str(path), 2048))
    assert path.stat().st_size == 2048
    assert {k: v[1] for k, v in j2.live.items()} == {rid(1): b"a" * 30}
    assert j2.put(rid(3), b"c" * 30, 1)  # and it goes on from there
