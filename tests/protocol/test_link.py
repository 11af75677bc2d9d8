"""Link framing: COBS + CRC-16, corrupt input becomes an error event."""
import random

import pytest
from hypothesis import given, strategies as st

from pen_protocol import link as L
from conftest import run_micropython


def test_crc_check_value():
    assert L.crc16(b"123456789") == 0x29B1


@given(st.binary(max_size=600))
def test_cobs_round_trip_has_no_zero(data):
    enc = L.cobs_encode(data)
    assert 0 not in enc
    assert L.cobs_decode(enc) == data


@given(st.lists(st.tuples(st.integers(1, 0x3F), st.integers(0, 255), st.binary(max_size=300)), max_size=8),
       st.integers(1, 50))
def test_frames_survive_any_chunking(frames, chunk):
    wire = b"".join(L.encode(k, s, p) for k, s, p in frames)
    d = L.Decoder()
    got = []
    for i in range(0, len(wire), chunk):
        got += d.feed(wire[i:i + chunk])
    assert [(f.kind, f.seq, f.payload) for f in got] == frames


def test_corrupt_byte_gives_crc_or_cobs_error_and_next_frame_still_decodes():
    d = L.Decoder()
    bad = bytearray(L.encode(L.SUBMIT, 1, b"hello record"))
    bad[5] ^= 0x40
    out = d.feed(bytes(bad) + L.encode(L.STATUS, 2))
    assert isinstance(out[0], L.LinkError) and out[0].reason in (L.E_CRC, L.E_COBS)
    assert isinstance(out[1], L.Frame) and out[1].kind == L.STATUS and out[1].seq == 2


def test_truncated_frame_is_an_error():
    d = L.Decoder()
    out = d.feed(b"\x02\x01\x00")
    assert len(out) == 1 and out[0].reason == L.E_TRUNCATED


def test_oversized_input_is_dropped_up_to_the_next_delimiter():
    d = L.Decoder()
    out = d.feed(b"\x01" * (L.MAX_ENCODED + 500))
    assert [e.reason for e in out] == [L.E_OVERSIZED]
    out = d.feed(b"\x00" + L.encode(L.HELLO, 9))
    assert len(out) == 1 and out[0].kind == L.HELLO and out[0].seq == 9


def test_random_garbage_never_raises():
    rnd = random.Random(3)
    d = L.Decoder()
    for _ in range(300):
        for ev in d.feed(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 200)))):
            assert isinstance(ev, (L.Frame, L.LinkError))


def test_encoder_refuses_oversized_payload():
    with pytest.raises(ValueError):
        L.encode(L.SUBMIT, 0, bytes(L.MAX_PAYLOAD + 1))


@pytest.mark.micropython
def test_link_framing_under_micropython_64k():
    code = """
from pen_protocol import link as L
d = L.Decoder()
wire = L.encode(L.SUBMIT, 7, bytes(range(256)) * 3) + b'\\x02\\x01\\x00' + L.encode(L.STATUS, 8)
bad = bytearray(L.encode(L.SPENT, 9, b'12345678')); bad[3] ^= 1
out = []
for i in range(0, len(wire), 13):
    out += d.feed(wire[i:i+13])
out += d.feed(bytes(bad))
print([(type(e).__name__, getattr(e, 'kind', getattr(e, 'reason', None))) for e in out])
print(L.crc16(b'123456789') == 0x29B1, out[0].payload == bytes(range(256)) * 3)
"""
    out = run_micropython(code, heap="64k").split("\n")
    assert out[0] == "[('Frame', 2), ('LinkError', 2), ('Frame', 4), ('LinkError', 1)]"
    assert out[1] == "True True"
