"""IdRing and the spent set built on it: fixed memory, oldest out first,
never a false "unspent"."""
import pytest

import pen.sim  # noqa: F401  (firmware on the path)
from pen_node.ring import IdRing
from pen_node.spent import SpentSet, UNKNOWN, USED, ACCOUNTED, KEEP_MS
from conftest import run_micropython


def test_ring_evicts_the_oldest_and_keeps_its_size():
    r = IdRing(3, 4)
    size = len(r.ids)
    for i in range(5):
        r.put(bytes([i]) * 4)
    assert len(r.ids) == size and len(r) == 3 and r.dropped == 2
    assert bytes([0]) * 4 not in r and bytes([4]) * 4 in r


def test_ring_ignores_matches_across_slot_boundaries():
    r = IdRing(4, 4)
    r.put(b"\x01\x02\x03\x04")
    r.put(b"\x05\x06\x07\x08")
    assert b"\x03\x04\x05\x06" not in r


def test_ring_values_and_removal():
    r = IdRing(4, 8, 2)
    r.put(b"a" * 8, 0x1234)
    assert r.get(b"a" * 8) == 0x1234
    r.put(b"a" * 8, 7)
    assert r.get(b"a" * 8) == 7 and len(r) == 1
    r.remove(b"a" * 8)
    assert r.get(b"a" * 8) is None and len(r) == 0


def test_ring_refuses_wrong_width():
    with pytest.raises(ValueError):
        IdRing(2, 4).put(b"abc")
    assert b"abc" not in IdRing(2, 4)


def test_spent_set_upgrades_used_to_accounted_never_back():
    s = SpentSet(4)
    s.add(b"t" * 8, ACCOUNTED, 0)
    s.add(b"t" * 8, USED, 0)
    assert s.lookup(b"t" * 8) == ACCOUNTED


def test_spent_set_forgets_oldest_as_unknown_not_unspent():
    s = SpentSet(2)
    for i in range(3):
        s.add(bytes([i]) * 8, USED, i * KEEP_MS)
    assert s.lookup(bytes([0]) * 8) == UNKNOWN and s.dropped == 1
    assert bytes([2]) * 8 in s


@pytest.mark.micropython
def test_ring_and_spent_set_under_micropython_64k():
    out = run_micropython("""
from pen_node.spent import SpentSet, USED, ACCOUNTED
import gc
s = SpentSet(512)
gc.collect(); before = gc.mem_alloc()
for i in range(2000):
    s.add(i.to_bytes(8, 'big'), USED, i * 86400000)
gc.collect(); after = gc.mem_alloc()
print(len(s), s.dropped, s.lookup((1999).to_bytes(8, 'big')), s.lookup((0).to_bytes(8, 'big')), after - before < 512)
""", heap="64k")
    assert out.split() == ["512", "1488", "1", "0", "True"]
