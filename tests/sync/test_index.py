"""The replica index: incremental adds match a fresh build, snapshots are frozen."""
import numpy as np

from pen.sync import estimate
from pen.sync.index import SetIndex
from sync_helpers import random_arrays, to_ids


def _same(a, b):
    assert np.array_equal(a.sym_hi, b.sym_hi)
    assert np.array_equal(a.sym_lo, b.sym_lo)
    assert np.array_equal(a.sym_chk, b.sym_chk)
    assert np.array_equal(a.tow, b.tow)
    assert len(a) == len(b)


def test_adding_ids_one_by_one_equals_building_from_all_of_them():
    hi, lo = random_arrays(np.random.default_rng(1), 3000)
    ids = to_ids(hi, lo)
    built = SetIndex.from_ids(ids, cache_symbols=1024)
    grown = SetIndex.from_ids(ids[:1000], cache_symbols=1024)
    for x in ids[1000:]:
        assert grown.add(x)
    _same(built, grown)
    assert to_ids(*grown.arrays()) == ids


def test_add_many_skips_ids_already_present_and_repeats():
    hi, lo = random_arrays(np.random.default_rng(2), 100)
    ids = to_ids(hi, lo)
    idx = SetIndex.from_ids(ids[:60], cache_symbols=256)
    assert idx.add_many(ids[40:] + ids[90:]) == 40
    assert not idx.add(ids[0])
    _same(idx, SetIndex.from_ids(ids, cache_symbols=256))


def test_membership_sees_merged_and_pending_ids():
    hi, lo = random_arrays(np.random.default_rng(3), 20)
    ids = to_ids(hi, lo)
    idx = SetIndex.from_ids(ids[:10], cache_symbols=64)
    idx.add(ids[10])
    assert ids[0] in idx and ids[10] in idx and ids[11] not in idx
    got = idx.contains_arrays(*[np.array(v, dtype=np.uint64) for v in zip(*[
        (int.from_bytes(x[:8], "big"), int.from_bytes(x[8:], "big")) for x in ids])])
    assert got.tolist() == [True] * 11 + [False] * 9


def test_snapshot_is_not_changed_by_later_adds():
    hi, lo = random_arrays(np.random.default_rng(4), 30)
    ids = to_ids(hi, lo)
    idx = SetIndex.from_ids(ids[:20], cache_symbols=128)
    snap = idx.snapshot()
    before = snap.fingerprint()
    for x in ids[20:]:
        idx.add(x)
    assert snap.fingerprint() == before and len(snap) == 20
    assert idx.fingerprint() != before


def test_buckets_partition_the_set_in_order():
    hi, lo = random_arrays(np.random.default_rng(5), 500)
    idx = SetIndex.from_arrays(hi, lo, cache_symbols=64)
    parts = [idx.bucket(3, b) for b in range(8)]
    assert sum(len(p[0]) for p in parts) == 500
    for b, (h, _) in enumerate(parts):
        assert np.all((h >> np.uint64(61)) == b)
    assert len(idx.bucket(0, 0)[0]) == 500


def test_symbols_past_the_cache_are_computed_from_the_ids():
    hi, lo = random_arrays(np.random.default_rng(6), 200)
    small = SetIndex.from_arrays(hi, lo, cache_symbols=64)
    big = SetIndex.from_arrays(hi, lo, cache_symbols=256)
    assert small.symbols_bytes(10, 200) == big.symbols_bytes(10, 200)
    assert small.symbols_bytes(100, 200) == big.symbols_bytes(100, 200)


def test_estimator_is_unbiased_within_a_few_standard_errors():
    rng = np.random.default_rng(7)
    ests = []
    for _ in range(20):
        hi, lo = random_arrays(rng, 500)
        a = SetIndex.from_arrays(hi[:250], lo[:250], cache_symbols=16)
        b = SetIndex.from_arrays(hi[250:], lo[250:], cache_symbols=16)
        ests.append(estimate.estimate(estimate.to_wire(a.tow), b.tow))
    # k = 500 each time; sd of one estimate 6.25 %, of the mean of 20 1.4 %
    assert 0.94 * 500 < np.mean(ests) < 1.06 * 500


def test_counter_differences_survive_the_16_bit_wire_form():
    # counters of huge sets wrap; their differences (|d| < 2**15) do not
    a = np.array([1070000, -5, 3, 0] + [0] * (estimate.TOW_COUNTERS - 4))
    b = np.array([1069990, 5, -30000, 0] + [0] * (estimate.TOW_COUNTERS - 4))
    d = estimate.difference(estimate.to_wire(a), b)
    assert d[:4].tolist() == [10, -10, 30003, 0]


def test_ids_sharing_their_high_half_merge_in_order_and_stay_members():
    hi, lo = random_arrays(np.random.default_rng(8), 40)
    hi[20:25] = hi[3]  # five later ids share id 3's first 8 bytes
    ids = to_ids(hi, lo)
    idx = SetIndex.from_ids(ids[:10], cache_symbols=64)
    for x in ids[10:]:
        idx.add(x)
    idx.add_many([])
    assert to_ids(*idx.arrays()) == ids
    assert all(x in idx for x in ids)
    assert idx.fingerprint() == SetIndex.from_ids(ids, cache_symbols=64).fingerprint()
