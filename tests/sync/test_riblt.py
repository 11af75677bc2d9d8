"""The coded-symbol maths: scalar and numpy paths agree bit for bit, the
mapping has the density the decoder relies on, peeling recovers differences."""
import numpy as np
import pytest

from pen.sync import riblt
from sync_helpers import random_arrays


def test_numpy_and_scalar_encoders_give_identical_symbols():
    hi, lo = random_arrays(np.random.default_rng(1), 300)
    m = 1500
    fast = riblt.encode_np(hi, lo, m)
    s_hi, s_lo, s_chk = [0] * m, [0] * m, [0] * m
    for x, y in zip(hi.tolist(), lo.tolist()):
        riblt.encode_one(s_hi, s_lo, s_chk, x, y)
    assert fast[0].tolist() == s_hi and fast[1].tolist() == s_lo and fast[2].tolist() == s_chk


def test_symbols_past_an_offset_equal_the_slice_of_the_full_run():
    hi, lo = random_arrays(np.random.default_rng(2), 500)
    full = riblt.encode_np(hi, lo, 900)
    tail = riblt.encode_np(hi, lo, 900, 700)
    for f, t in zip(full, tail):
        assert np.array_equal(f[700:], t)


def test_pinned_vector_for_the_zero_id_and_a_known_id():
    # pins the hash, the checksum and the index sequence against silent change
    h = riblt.id_hash(0, 0)
    mp = riblt.Mapping(h)
    first = [0] + [mp.advance() for _ in range(5)]
    assert first == sorted(set(first))
    x = riblt.split(bytes(range(16)))
    assert riblt.join(*x) == bytes(range(16))
    assert riblt.checksum_of((x[0] << 64) | x[1]) == riblt.id_hash(*x) & riblt.MASK32


def test_each_id_lands_in_about_two_ln_m_symbols():
    hi, lo = random_arrays(np.random.default_rng(3), 2000)
    m = 2048
    degrees = []
    for x, y in zip(hi.tolist()[:400], lo.tolist()[:400]):
        mp, d, i = riblt.Mapping(riblt.id_hash(x, y)), 0, 0
        while i < m:
            d += 1
            i = mp.advance()
        degrees.append(d)
    # sum over i < m of 2/(i+2) = 2*(H(m+1) - 1) ~ 14.9
    assert 13.5 < np.mean(degrees) < 16.5


def test_symbol_wire_form_round_trips():
    hi, lo = random_arrays(np.random.default_rng(4), 50)
    sym = riblt.encode_np(hi, lo, 40)
    raw = riblt.symbols_to_bytes(*sym, 0, 40)
    assert len(raw) == 40 * riblt.SYMBOL_BYTES
    back = riblt.symbols_from_bytes(raw)
    for a, b in zip(sym, back):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("k", [1, 2, 10, 300])
def test_decoder_recovers_a_difference_from_a_prefix_of_symbols(k):
    hi, lo = random_arrays(np.random.default_rng(100 + k), k)
    m = 3 * k + 20
    s_hi, s_lo, s_chk = riblt.encode_np(hi, lo, m)
    d = riblt.Decoder()
    step = max(1, k // 8)
    i = 0
    while not d.complete:
        assert i < m, "did not decode within %d symbols" % m
        d.add_symbols([(int(a) << 64) | int(b) for a, b in zip(s_hi[i:i + step], s_lo[i:i + step])],
                      s_chk[i:i + step].tolist())
        i += step
    assert sorted(d.ids) == sorted((int(a) << 64) | int(b) for a, b in zip(hi, lo))


def test_decoder_never_completes_on_garbage_symbols():
    rng = np.random.default_rng(5)
    d = riblt.Decoder()
    for _ in range(20):
        hi, lo = random_arrays(rng, 50)
        d.add_symbols([(int(a) << 64) | int(b) for a, b in zip(hi, lo)],
                      rng.integers(0, 2**32, 50).tolist())
    assert not d.complete


def test_a_false_pure_cell_stalls_the_decoder_instead_of_misleading_it():
    hi, lo = random_arrays(np.random.default_rng(6), 2)
    x, y = [(int(a) << 64) | int(b) for a, b in zip(hi, lo)]
    s_hi, s_lo, s_chk = riblt.encode_np(hi, lo, 40)
    ids = [(int(a) << 64) | int(b) for a, b in zip(s_hi, s_lo)]
    chks = s_chk.tolist()
    chks[0] = riblt.checksum_of(x ^ y)  # symbol 0 (holds x and y) now looks pure
    d = riblt.Decoder()
    d.add_symbols(ids[:1], chks[:1])
    assert d.ids == [x ^ y]  # the wrong id is taken out ...
    d.add_symbols(ids[1:], chks[1:])
    assert not d.complete  # ... and the decoder never claims success
    assert d.stalled or sorted(d.ids) != sorted([x, y])


def test_a_hostile_stream_cannot_make_the_decoder_peel_more_ids_than_cells():
    # every cell "pure" for its own made-up id: at most one peel per cell
    rng = np.random.default_rng(7)
    vals = [int.from_bytes(rng.bytes(16), "big") | 1 for _ in range(300)]
    d = riblt.Decoder()
    d.add_symbols(vals, [riblt.checksum_of(v) for v in vals])
    assert len(d.ids) <= 300 and not d.complete
