"""Whole syncs in memory: exact recovery on both sides for many sizes and
seeds, the retry and fallback paths, and what each costs."""
import numpy as np
import pytest

from pen.sync import messages as M, reconciler as R
from pen.sync.index import SetIndex
from pen.sync.reconciler import Reconciler, reconcile
from sync_helpers import check, pair, random_arrays, to_ids


@pytest.mark.parametrize("n", [0, 1, 50, 2000])
@pytest.mark.parametrize("k", [0, 1, 2, 10, 1000])
def test_exact_recovery_small_sets(n, k):
    for seed in range(3):
        ia, ib, a_only, b_only = pair(seed * 1000 + n + k, n, k // 2, k - k // 2)
        a, b = reconcile(ia, ib)
        check(a, b, a_only, b_only)


@pytest.mark.parametrize("k", [0, 1, 10, 1000])
def test_exact_recovery_100k_replicas(k):
    ia, ib, a_only, b_only = pair(42 + k, 100_000, k // 2, k - k // 2)
    a, b = reconcile(ia, ib)
    check(a, b, a_only, b_only)
    if k == 1000:
        assert a.mode == "symbols"
        assert a.sent_bytes + b.sent_bytes <= 4 * 16 * k
        assert a.sent_messages <= 3


def test_many_seeds_one_sided_and_lopsided_differences():
    for seed in range(25):
        rng = np.random.default_rng(seed)
        a_only, b_only = int(rng.integers(0, 60)), int(rng.integers(0, 60))
        ia, ib, ea, eb = pair(seed, 3000, a_only, b_only)
        a, b = reconcile(ia, ib)
        check(a, b, ea, eb)


def test_identical_sets_cost_one_round_trip_and_a_few_bytes():
    ia, ib, _, _ = pair(1, 5000, 0, 0)
    a, b = reconcile(ia, ib)
    assert a.mode == b.mode == "identical"
    assert a.sent_messages == b.sent_messages == 1
    assert a.sent_bytes + b.sent_bytes < 40


def test_single_difference_takes_one_round_trip():
    ia, ib, ea, eb = pair(2, 5000, 1, 0)
    a, b = reconcile(ia, ib)
    check(a, b, ea, eb)
    assert a.sent_messages == 1 and a.sent_bytes + b.sent_bytes < 80


@pytest.mark.parametrize("empty", ["a", "b", "both"])
def test_one_side_empty_ships_the_other_sides_ids(empty):
    n = 3000
    a_only = 0 if empty in ("a", "both") else n
    b_only = 0 if empty in ("b", "both") else n
    ia, ib, ea, eb = pair(3, 0, a_only, b_only)
    a, b = reconcile(ia, ib)
    check(a, b, ea, eb)
    if empty != "both":
        assert a.mode == "list"
        assert a.sent_bytes + b.sent_bytes < 16 * n * 1.05 + 200


def test_large_difference_relative_to_the_sets_uses_lists_over_several_buckets(monkeypatch):
    monkeypatch.setattr(R, "LIST_TARGET_IDS", 256)
    monkeypatch.setattr(R, "MAX_BUCKET_IDS", 1024)
    ia, ib, ea, eb = pair(4, 500, 1500, 1200)
    a, b = reconcile(ia, ib)
    check(a, b, ea, eb)
    # 2000 ids on the bigger side / 256 a bucket -> 2**3 buckets, one LIST each
    assert R.list_bits(len(ia), len(ib)) == 3
    assert a.mode == "list" and a.sent_messages == 1 + 8


def test_an_underestimate_is_repaired_by_asking_for_more(monkeypatch):
    monkeypatch.setattr(R, "FIRST_BATCH_FACTOR", 0.5)
    ia, ib, ea, eb = pair(5, 20_000, 300, 300)
    a, b = reconcile(ia, ib)
    check(a, b, ea, eb)
    assert a.mode == "symbols" and a.sent_messages > 2


def test_a_difference_beyond_the_symbol_limit_falls_back_to_lists(monkeypatch):
    monkeypatch.setattr(R, "FIRST_BATCH_FACTOR", 0.3)
    monkeypatch.setattr(R, "MAX_SYMBOLS", 200)
    ia, ib, ea, eb = pair(6, 20_000, 200, 200)
    a, b = reconcile(ia, ib)
    check(a, b, ea, eb)
    assert b.symbols == 200 and a.mode == "list"


def test_differences_past_the_cached_symbols_decode_from_computed_symbols():
    ia, ib, ea, eb = pair(7, 5000, 400, 400, cache=256)
    a, b = reconcile(ia, ib)
    check(a, b, ea, eb)
    assert a.mode == "symbols" and a.symbols > 256


def test_ids_sharing_their_first_8_bytes_are_sent_whole():
    rng = np.random.default_rng(8)
    hi, lo = random_arrays(rng, 3000)
    hi[1] = hi[0]  # ids 0 and 1 share their first 8 bytes; b lacks id 1
    ia = SetIndex.from_arrays(hi[:2000], lo[:2000], cache_symbols=512)
    keep = np.r_[0, 2:2000]
    ib = SetIndex.from_arrays(hi[keep], lo[keep], cache_symbols=512)
    a, b = Reconciler(ia, True), Reconciler(ib, False)
    msg = a.start()
    while msg is not None:
        reply = b.receive(msg)
        msg = a.receive(reply)
    kind, (fp, we_lack, prefixes, whole) = M.parse(reply)
    assert kind == M.RESULT and prefixes == b"" and whole == to_ids(hi[1:2], lo[1:2])[0]
    check(a, b, to_ids(hi[1:2], lo[1:2]), [])


def test_ids_added_during_a_sync_wait_for_the_next_one():
    ia, ib, ea, eb = pair(9, 4000, 30, 30)
    a, b = Reconciler(ia, True), Reconciler(ib, False)
    msg = a.start()
    extra = to_ids(*random_arrays(np.random.default_rng(99), 5))
    for x in extra:
        ia.add(x)
    while msg is not None:
        reply = b.receive(msg)
        msg = a.receive(reply) if reply is not None else None
    check(a, b, ea, eb)
    a2, b2 = reconcile(ia, ib)
    check(a2, b2, sorted(ea + extra), eb)


def test_probe_of_several_symbols_decodes_small_differences_in_one_round_trip():
    ia, ib, ea, eb = pair(10, 4000, 1, 1)
    a, b = Reconciler(ia, True, probe=6), Reconciler(ib, False)
    reply = b.receive(a.start())
    assert M.parse(reply)[0] == M.RESULT
    assert a.receive(reply) is None
    check(a, b, ea, eb)


def test_a_stalled_decoder_falls_back_to_lists_at_once(monkeypatch):
    class Stalling(R.riblt.Decoder):
        def add_symbols(self, ids128, chks):
            if self.count:  # from the first batch after the HELLO on,
                self.stalled = True  # as after a false pure symbol
            super().add_symbols(ids128, chks)

    monkeypatch.setattr(R.riblt, "Decoder", Stalling)
    ia, ib, ea, eb = pair(11, 3000, 40, 40)
    a, b = reconcile(ia, ib)
    check(a, b, ea, eb)
    assert a.mode == "list" and b.symbols < 200 and a.sent_messages == 3
