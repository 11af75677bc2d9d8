"""The deterministic CBOR codec, cross-checked against cbor2."""
import cbor2
import pytest
from hypothesis import given, settings, strategies as st

from pen_protocol import cbor
from pen_protocol.cbor import CBORError

ints = st.integers(min_value=-(2 ** 64), max_value=2 ** 64 - 1)
leaves = ints | st.binary(max_size=40) | st.text(max_size=20) | st.booleans() | st.none()
values = st.recursive(leaves, lambda c: st.lists(c, max_size=5) | st.dictionaries(ints, c, max_size=5),
                      max_leaves=25)


@given(values)
@settings(max_examples=400)
def test_our_bytes_decode_identically_with_cbor2(v):
    raw = cbor.dumps(v)
    assert cbor2.loads(raw) == v
    assert cbor.loads(raw) == v


@given(values)
@settings(max_examples=200)
def test_encoding_is_the_rfc8949_core_deterministic_form(v):
    # with integer keys, cbor2's canonical (length-first) order equals bytewise
    # order except between negative and large positive keys; compare on
    # values whose keys are all small non-negative, per REFERENCE.md
    raw = cbor.dumps(v)
    assert cbor.dumps(cbor.loads(raw)) == raw


@given(st.dictionaries(st.integers(0, 23), ints, max_size=10))
def test_small_key_maps_match_cbor2_canonical(m):
    assert cbor.dumps(m) == cbor2.dumps(m, canonical=True)


@given(st.binary(max_size=64))
@settings(max_examples=2000)
def test_random_bytes_never_escape_cbor_error(data):
    try:
        v = cbor.loads(data)
    except CBORError:
        return
    assert cbor.dumps(v) == data  # anything accepted is canonical


@given(values, st.binary(min_size=1, max_size=4))
def test_trailing_bytes_rejected(v, junk):
    with pytest.raises(CBORError, match="trailing bytes"):
        cbor.loads(cbor.dumps(v) + junk)


@given(values)
def test_every_truncation_rejected(v):
    raw = cbor.dumps(v)
    for i in range(len(raw)):
        with pytest.raises(CBORError):
            cbor.loads(raw[:i])


def test_rejects_non_shortest_integer():
    with pytest.raises(CBORError, match="non-shortest"):
        cbor.loads(b"\x18\x17")


def test_rejects_indefinite_length():
    with pytest.raises(CBORError, match="indefinite"):
        cbor.loads(b"\x9f\x01\xff")


def test_rejects_unsorted_map_keys():
    with pytest.raises(CBORError, match="unsorted"):
        cbor.loads(b"\xa2\x02\x01\x01\x00")


def test_rejects_duplicate_map_keys():
    with pytest.raises(CBORError, match="duplicate"):
        cbor.loads(b"\xa2\x01\x01\x01\x00")


def test_rejects_deep_nesting_without_recursion_error():
    with pytest.raises(CBORError, match="too deep"):
        cbor.loads(b"\x81" * 10000 + b"\x00")


def test_rejects_length_beyond_input_without_allocating():
    with pytest.raises(CBORError, match="longer than input"):
        cbor.loads(b"\x5b\x00\x00\x00\x10\x00\x00\x00\x00")  # claims 64 GiB
    with pytest.raises(CBORError, match="longer than input"):
        cbor.loads(b"\x9b\x00\x00\x00\x10\x00\x00\x00\x00")


def test_rejects_floats_and_tags():
    with pytest.raises(CBORError):
        cbor.loads(cbor2.dumps(1.5))
    with pytest.raises(CBORError, match="tag"):
        cbor.loads(cbor2.dumps(cbor2.CBORTag(1, 0)))


def test_encoder_refuses_unsupported_values():
    for bad in (1.5, {"a": 1}, {True: 1}, 2 ** 64, -(2 ** 64) - 1, object()):
        with pytest.raises(CBORError):
            cbor.dumps(bad)
