"""A peer's bad messages: each is rejected with its exact reason, leaves the
reconciler failed and the index unchanged, and nothing a peer says makes us
allocate past a named limit or loop without end."""
import numpy as np
import pytest

from pen_protocol import cbor
from pen.sync import estimate, messages as M, reconciler as R, riblt
from pen.sync.errors import SyncError
from pen.sync.reconciler import Reconciler
from sync_helpers import pair, random_arrays, to_ids

ZERO_SYMBOL = bytes(riblt.SYMBOL_BYTES)


def _peers(seed=1, common=2000, a_only=20, b_only=20):
    ia, ib, _, _ = pair(seed, common, a_only, b_only, cache=512)
    return ia, ib, Reconciler(ia, True), Reconciler(ib, False)


def responder_waiting_for_data():
    ia, ib, a, b = _peers()
    est = b.receive(a.start())
    assert b.state == "wait-data"
    return ib, b, a, est


def _rejects(r, msg, reason, index=None):
    before = (index.fingerprint(), len(index)) if index is not None else None
    with pytest.raises(SyncError) as e:
        r.receive(msg)
    assert e.value.reason == reason, str(e.value)
    assert r.state == "failed"
    with pytest.raises(SyncError) as again:
        r.receive(M.encode(M.IDENTICAL))
    assert again.value.reason == "failed"
    if index is not None:
        assert (index.fingerprint(), len(index)) == before


def _hello(n=10, symbols=ZERO_SYMBOL, version=M.VERSION):
    return M.encode(M.HELLO, version, n, symbols)


# -- any state: shape ------------------------------------------------------

@pytest.mark.parametrize("msg,reason", [
    (b"", "malformed"),
    (b"\xff", "malformed"),
    (b"\x18\x01", "malformed"),  # non-shortest CBOR head
    (cbor.dumps(5), "malformed"),
    (cbor.dumps([]), "malformed"),
    (cbor.dumps([99]), "malformed"),
    (cbor.dumps([M.HELLO, 1, 5]), "malformed"),
    (cbor.dumps([M.HELLO, 1, "five", ZERO_SYMBOL]), "malformed"),
    (cbor.dumps([M.HELLO, True, 5, ZERO_SYMBOL]), "malformed"),
    (cbor.dumps([M.HELLO, 1, -5, ZERO_SYMBOL]), "malformed"),
    (_hello() + b"\x00", "malformed"),
    (bytes(M.MAX_MESSAGE_BYTES + 1), "too-large"),
    ("not bytes", "malformed"),
])
def test_rejects_malformed_messages(msg, reason):
    ia, ib, a, b = _peers()
    _rejects(b, msg, reason, ib)


# -- responder ------------------------------------------------------------

def test_rejects_hello_of_another_version():
    ia, ib, a, b = _peers()
    _rejects(b, _hello(version=2), "version", ib)


@pytest.mark.parametrize("symbols", [b"", ZERO_SYMBOL[:-1], ZERO_SYMBOL * (R.MAX_PROBE_SYMBOLS + 1)])
def test_rejects_hello_with_a_bad_symbols_field(symbols):
    ia, ib, a, b = _peers()
    _rejects(b, _hello(symbols=symbols), "malformed", ib)


def test_rejects_hello_claiming_a_set_past_the_limit():
    ia, ib, a, b = _peers()
    _rejects(b, _hello(n=R.MAX_PEER_SET + 1), "out-of-range", ib)


def test_rejects_symbols_before_hello():
    ia, ib, a, b = _peers()
    _rejects(b, M.encode(M.SYMBOLS, 0, ZERO_SYMBOL), "unexpected", ib)


def test_rejects_a_second_hello():
    ib, b, a, _ = responder_waiting_for_data()
    _rejects(b, _hello(), "unexpected", ib)


def test_rejects_symbols_that_do_not_continue_the_stream():
    ib, b, a, _ = responder_waiting_for_data()
    _rejects(b, M.encode(M.SYMBOLS, 5, ZERO_SYMBOL), "out-of-range", ib)


def test_rejects_an_empty_symbols_field():
    ib, b, a, _ = responder_waiting_for_data()
    _rejects(b, M.encode(M.SYMBOLS, 1, b""), "malformed", ib)


def test_rejects_more_symbols_in_one_message_than_the_batch_limit():
    ib, b, a, _ = responder_waiting_for_data()
    _rejects(b, M.encode(M.SYMBOLS, 1, ZERO_SYMBOL * (R.MAX_BATCH_SYMBOLS + 1)), "out-of-range", ib)


def test_garbage_symbols_end_in_a_list_fallback_not_a_loop(monkeypatch):
    monkeypatch.setattr(R, "MAX_SYMBOLS", 300)
    ib, b, a, _ = responder_waiting_for_data()
    rng = np.random.default_rng(3)
    start, count = 1, 40
    for _ in range(50):
        reply = b.receive(M.encode(M.SYMBOLS, start, rng.bytes(count * riblt.SYMBOL_BYTES)))
        start += count
        kind, items = M.parse(reply)
        if kind == M.FALLBACK:
            break
        assert kind == M.MORE
        count = items[0]
        assert start + count <= R.MAX_SYMBOLS
    assert kind == M.FALLBACK and start == R.MAX_SYMBOLS and b.state == "wait-list"
    _rejects(b, M.encode(M.SYMBOLS, start, ZERO_SYMBOL), "unexpected", ib)


def _list_state(monkeypatch):
    monkeypatch.setattr(R, "LIST_TARGET_IDS", 256)
    ib, b, a, _ = responder_waiting_for_data()
    bits = R.list_bits(b.n_peer, b.n)
    assert bits > 0
    return ib, b, bits


def _ids_in_bucket(bits, bucket, count, seed=4):
    hi, lo = random_arrays(np.random.default_rng(seed), count)
    hi = (hi >> np.uint64(bits)) | np.uint64(bucket << (64 - bits))
    order = np.lexsort((lo, hi))
    return b"".join(to_ids(hi[order], lo[order]))


def test_rejects_list_with_other_bucket_bits(monkeypatch):
    ib, b, bits = _list_state(monkeypatch)
    _rejects(b, M.encode(M.LIST, bits + 1, 0, b""), "out-of-range", ib)


def test_rejects_list_buckets_out_of_order(monkeypatch):
    ib, b, bits = _list_state(monkeypatch)
    _rejects(b, M.encode(M.LIST, bits, 1, _ids_in_bucket(bits, 1, 3)), "out-of-range", ib)


def test_rejects_list_ids_not_ascending(monkeypatch):
    ib, b, bits = _list_state(monkeypatch)
    raw = _ids_in_bucket(bits, 0, 3)
    _rejects(b, M.encode(M.LIST, bits, 0, raw[16:32] + raw[:16] + raw[32:]), "malformed", ib)


def test_rejects_list_ids_outside_their_bucket(monkeypatch):
    ib, b, bits = _list_state(monkeypatch)
    _rejects(b, M.encode(M.LIST, bits, 0, _ids_in_bucket(bits, 1, 3)), "inconsistent", ib)


def test_rejects_a_bucket_past_the_bucket_limit(monkeypatch):
    ib, b, bits = _list_state(monkeypatch)
    monkeypatch.setattr(R, "MAX_BUCKET_IDS", 10)
    _rejects(b, M.encode(M.LIST, bits, 0, _ids_in_bucket(bits, 0, 11)), "out-of-range", ib)


def test_rejects_more_listed_ids_than_announced(monkeypatch):
    monkeypatch.setattr(R, "LIST_TARGET_IDS", 256)
    ia, ib, a, b = _peers()
    b.receive(_hello(n=5))
    bits = R.list_bits(5, b.n)
    _rejects(b, M.encode(M.LIST, bits, 0, _ids_in_bucket(bits, 0, 6)), "inconsistent", ib)


# -- initiator ------------------------------------------------------------

def initiator_waiting_for_estimate():
    ia, ib, a, b = _peers()
    a.start()
    return ia, a, b


def test_rejects_estimate_with_a_short_sketch():
    ia, a, b = initiator_waiting_for_estimate()
    _rejects(a, M.encode(M.ESTIMATE, 10, ZERO_SYMBOL, bytes(estimate.TOW_BYTES - 2)), "malformed", ia)


def test_rejects_estimate_with_a_short_fingerprint():
    ia, a, b = initiator_waiting_for_estimate()
    _rejects(a, M.encode(M.ESTIMATE, 10, ZERO_SYMBOL[:8], bytes(estimate.TOW_BYTES)), "malformed", ia)


def test_rejects_more_before_any_symbols():
    ia, a, b = initiator_waiting_for_estimate()
    _rejects(a, M.encode(M.MORE, 10), "unexpected", ia)


def _result_for(a, we_lack=b"", prefixes=b"", they_lack=b"", fp=None):
    return M.encode(M.RESULT, fp or ZERO_SYMBOL, we_lack, prefixes, they_lack)


def test_rejects_result_saying_we_lack_an_id_we_have():
    ia, a, b = initiator_waiting_for_estimate()
    mine = to_ids(*ia.arrays())[0]
    _rejects(a, _result_for(a, we_lack=mine), "inconsistent", ia)


def test_rejects_result_saying_they_lack_an_id_we_do_not_have():
    ia, a, b = initiator_waiting_for_estimate()
    _rejects(a, _result_for(a, they_lack=bytes(range(16))), "inconsistent", ia)


def test_rejects_result_with_a_prefix_naming_none_of_our_ids():
    ia, a, b = initiator_waiting_for_estimate()
    _rejects(a, _result_for(a, prefixes=bytes(8)), "inconsistent", ia)


def test_rejects_result_with_prefixes_out_of_order():
    ia, a, b = initiator_waiting_for_estimate()
    mine = to_ids(*ia.arrays())
    _rejects(a, _result_for(a, prefixes=mine[1][:8] + mine[0][:8]), "malformed", ia)


def test_rejects_result_not_matching_the_fingerprints():
    ia, a, b = initiator_waiting_for_estimate()
    mine = to_ids(*ia.arrays())
    _rejects(a, _result_for(a, prefixes=mine[0][:8]), "inconsistent", ia)


def test_rejects_result_naming_an_id_twice():
    ia, a, b = initiator_waiting_for_estimate()
    mine = to_ids(*ia.arrays())
    _rejects(a, _result_for(a, prefixes=mine[0][:8], they_lack=mine[0]), "inconsistent", ia)


@pytest.mark.parametrize("count", [0, R.MAX_BATCH_SYMBOLS + 1])
def test_rejects_a_request_for_too_many_or_no_symbols(count):
    ia, ib, a, b = _peers()
    a.receive(b.receive(a.start()))
    assert a.state == "wait-decode"
    _rejects(a, M.encode(M.MORE, count), "limit", ia)


def _initiator_in_list(monkeypatch):
    monkeypatch.setattr(R, "LIST_TARGET_IDS", 256)
    ia, ib, a, b = _peers(common=0, a_only=600, b_only=600)
    first = a.receive(b.receive(a.start()))
    assert a.state == "wait-list-reply"
    kind, (bits, bucket, raw) = M.parse(first)
    return ia, a, bits, len(raw) // 16


def test_rejects_list_reply_with_a_bitmap_of_the_wrong_size(monkeypatch):
    ia, a, bits, n = _initiator_in_list(monkeypatch)
    _rejects(a, M.encode(M.LIST_REPLY, 0, bytes((n + 7) // 8 + 1), b""), "malformed", ia)


def test_rejects_list_reply_with_padding_bits_set(monkeypatch):
    ia, a, bits, n = _initiator_in_list(monkeypatch)
    assert n % 8
    _rejects(a, M.encode(M.LIST_REPLY, 0, b"\xff" * ((n + 7) // 8), b""), "malformed", ia)


def test_rejects_list_reply_for_another_bucket(monkeypatch):
    ia, a, bits, n = _initiator_in_list(monkeypatch)
    _rejects(a, M.encode(M.LIST_REPLY, 1, bytes((n + 7) // 8), b""), "out-of-range", ia)


def test_rejects_list_reply_saying_we_lack_ids_we_listed(monkeypatch):
    ia, a, bits, n = _initiator_in_list(monkeypatch)
    ours = ia.bucket(bits, 0)
    first = to_ids(ours[0][:1], ours[1][:1])[0]
    _rejects(a, M.encode(M.LIST_REPLY, 0, bytes((n + 7) // 8), first), "inconsistent", ia)


# -- calls out of turn ----------------------------------------------------

def test_rejects_messages_after_the_end():
    ia, ib, a, b = _peers(a_only=0, b_only=0)
    a.receive(b.receive(a.start()))
    assert a.done and b.done
    with pytest.raises(SyncError) as e:
        b.receive(_hello())
    assert e.value.reason == "unexpected"


def test_result_before_the_end_is_an_error():
    ia, ib, a, b = _peers()
    with pytest.raises(SyncError) as e:
        a.result()
    assert e.value.reason == "unexpected"


def test_start_is_for_initiators_only():
    ia, ib, a, b = _peers()
    with pytest.raises(SyncError) as e:
        b.start()
    assert e.value.reason == "unexpected"


# -- fuzz: any bytes in any state give a reply or a SyncError, nothing else ---

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


def _states():
    """(name, factory) where factory() -> (reconciler, a valid next message)."""
    def responder_hello():
        ia, ib, a, b = _peers(seed=2, common=500)
        return b, a.start()

    def responder_symbols():
        ia, ib, a, b = _peers(seed=2, common=500)
        est = b.receive(a.start())
        return b, a.receive(est)

    def initiator_estimate():
        ia, ib, a, b = _peers(seed=2, common=500)
        return a, b.receive(a.start())

    def initiator_result():
        ia, ib, a, b = _peers(seed=2, common=500)
        syms = a.receive(b.receive(a.start()))
        return a, b.receive(syms)

    return [responder_hello, responder_symbols, initiator_estimate, initiator_result]


@pytest.mark.parametrize("factory", _states(), ids=lambda f: f.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_messages_give_a_reply_or_a_sync_error(factory, data):
    r, msg = factory()
    msg = bytearray(msg)
    how = data.draw(st.sampled_from(["flip", "truncate", "extend", "random"]))
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            i = data.draw(st.integers(0, len(msg) - 1))
            msg[i] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "truncate":
        msg = msg[:data.draw(st.integers(0, len(msg) - 1))]
    elif how == "extend":
        msg += data.draw(st.binary(min_size=1, max_size=40))
    else:
        msg = bytearray(data.draw(st.binary(max_size=200)))
    try:
        out = r.receive(bytes(msg))
    except SyncError as e:
        assert e.reason in ("malformed", "too-large", "version", "unexpected", "out-of-range",
                            "inconsistent", "limit")
        assert r.state == "failed"
    else:
        assert out is None or isinstance(out, bytes)
