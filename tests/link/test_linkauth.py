"""Pairing and sealed sessions (pen_protocol.linkauth, pen_node.pairing) on
CPython: each test tries what an attacker on the link would and asserts the
exact refusal; the MicroPython run is test_linkauth_mpy.py."""
import hmac as std_hmac
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

import kit  # noqa: F401  (firmware on sys.path)
from kit import receipt_event
from pen_protocol import link as L
from pen_protocol import linkauth as A
from pen_protocol import sign
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from kit import MemStorage
from pen_node.mesh import MeshNode
from pen_node.pairing import LinkAuth, MemStore, MAX_ATTEMPTS
from pen_node.service import LinkService
from medium_node import XorShift
from meshkit import use_record

PHONE = bytes(range(32))


def Rand():
    return A.HashRand(b"t")  # deterministic bytes (the node takes rand as an argument)


def test_x25519_matches_rfc7748_and_libcrypto():
    # RFC 7748 section 5.2, first vector
    k = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert A.x25519(k, u).hex() == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    for _ in range(10):
        k, u = os.urandom(32), A.generator(b"1", os.urandom(32), os.urandom(16))
        assert A.x25519(k, u) == X25519PrivateKey.from_private_bytes(k).exchange(X25519PublicKey.from_public_bytes(u))


def test_hmac_matches_the_standard_library():
    for key in (b"", b"k" * 20, b"k" * 64, b"k" * 100):
        assert A.hmac(key, b"msg") == std_hmac.new(key, b"msg", "sha256").digest()


def test_elligator_gives_points_on_the_curve():
    for i in range(20):
        u = int.from_bytes(A.generator(str(i).encode(), PHONE, bytes(16)), "little")
        rhs = (u ** 3 + 486662 * u * u + u) % A.P
        assert pow(rhs, (A.P - 1) // 2, A.P) in (0, 1)


def _run(code_phone, code_node):
    ph, nd = A.Pairing(code_phone, PHONE, os.urandom), A.Pairing(code_node, PHONE, os.urandom)
    fin = ph.finish(nd.answer(ph.start()))
    return ph, nd, fin


def test_pairing_agrees_on_a_secret_with_the_right_code():
    ph, nd, fin = _run("123456", "123456")
    assert fin is not None and nd.confirm(fin) and ph.psk == nd.psk and len(ph.psk) == 32


def test_pairing_with_a_wrong_code_fails_on_the_phone_and_the_node():
    ph, nd, fin = _run("123457", "123456")
    assert fin is None and ph.psk is None
    assert not nd.confirm(sign.kid(PHONE) + bytes(16)) and nd.psk is None


def test_a_small_order_share_aborts_the_pairing():
    nd = A.Pairing("123456", PHONE, os.urandom)
    assert nd.answer(PHONE + bytes(16) + bytes(32)) is None  # u = 0: the shared key would be zero


def test_a_share_for_another_phone_key_is_refused():
    ph = A.Pairing("123456", PHONE, os.urandom)
    nd = A.Pairing("123456", bytes(32), os.urandom)
    assert nd.answer(ph.start()) is None


def sessions():
    psk = os.urandom(32)
    return A.Session(psk, b"p" * 16, b"n" * 16, b"phone"), A.Session(psk, b"p" * 16, b"n" * 16, b"node")


def test_every_flipped_byte_of_a_sealed_frame_is_refused_as_auth():
    ph, nd = sessions()
    s = ph.seal(b"hello")
    for i in range(len(s)):
        bad = bytearray(s)
        bad[i] ^= 0x01
        assert nd.open(bytes(bad)) == A.AUTH
    assert nd.open(s) == b"hello"


def test_a_replayed_frame_is_refused_and_late_ones_pass_once():
    ph, nd = sessions()
    frames = [ph.seal(b"%d" % i) for i in range(40)]
    assert nd.open(frames[5]) == b"5"
    assert nd.open(frames[5]) == A.REPLAY
    assert nd.open(frames[2]) == b"2"  # late, inside the window
    assert nd.open(frames[2]) == A.REPLAY
    assert nd.open(frames[39]) == b"39"
    assert nd.open(frames[6]) == A.REPLAY  # 33 behind: out of the window


def test_a_frame_reflected_back_or_from_another_session_is_refused():
    ph, nd = sessions()
    assert ph.open(ph.seal(b"x")) == A.AUTH  # each direction has its own keys
    other = A.Session(os.urandom(32), b"p" * 16, b"n" * 16, b"phone")
    assert nd.open(other.seal(b"x")) == A.AUTH
    assert nd.open(b"short") == A.AUTH


# -- the node's side, through LinkService --------------------------------------

def node(store=None):
    st = store if store is not None else MemStore()
    auth = LinkAuth(st, Rand())
    n = MeshNode(2, PRESETS["eu868-sf9"], Journal(MemStorage(8192)), XorShift(1))
    return LinkService(n, auth), auth, st


def one(svc, kind, payload, seq=3, now=1000):
    out = L.Decoder().feed(svc.feed(L.encode(kind, seq, payload), now))
    return out[0]


def paired_phone(svc, auth, code=None):
    code = code or auth.new_code()
    run = A.Pairing(code, PHONE, os.urandom)
    fin = run.finish(one(svc, L.PAIR_START, run.start()).payload)
    assert one(svc, L.PAIR_FINISH, fin).kind == L.PAIR_FINISH | L.RESPONSE
    return run.psk


def opened(svc, psk):
    nonce = os.urandom(16)
    f = one(svc, L.OPEN, sign.kid(PHONE) + nonce)
    assert f.kind == L.OPEN | L.RESPONSE
    assert f.payload[16:] == A.open_proof(psk, sign.kid(PHONE), nonce, f.payload[:16])
    return A.Session(psk, nonce, f.payload[:16], b"phone")


def sealed(svc, ses, kind, payload=b"", seq=9):
    wire = svc.feed(L.encode(L.SEALED, 0, ses.seal(L.encode(kind, seq, payload))), 1000)
    out = []
    for f in L.Decoder().feed(wire):
        assert f.kind == L.SEALED | L.RESPONSE, f
        out += L.Decoder().feed(ses.open(f.payload))
    return out


@pytest.mark.parametrize("kind,payload", [(L.SUBMIT, use_record(1)), (L.SPENT, bytes(8)), (L.STATUS, b""),
                                          (L.PENDING, b""), (0x33, b"")])
def test_every_request_but_hello_is_refused_before_pairing(kind, payload):
    svc, auth, st = node()
    f = one(svc, kind, payload)
    assert (f.kind, f.seq, f.payload[0]) == (L.ERROR, 3, L.E_UNPAIRED)
    assert not svc.node.pending and svc.stats["link_submits"] == 0


def test_pair_start_without_a_code_shown_is_locked():
    svc, auth, st = node()
    f = one(svc, L.PAIR_START, A.Pairing("000000", PHONE, os.urandom).start())
    assert f.payload[0] == L.E_LOCKED


def test_an_attempt_is_saved_before_the_node_answers_so_a_reboot_gives_none_back():
    svc, auth, st = node()
    auth.new_code()
    for left in range(MAX_ATTEMPTS - 1, -1, -1):
        one(svc, L.PAIR_START, A.Pairing("999999", PHONE, os.urandom).start())
        svc, auth, st = node(st)  # power cut right after the answer
        assert auth.attempts == left
    f = one(svc, L.PAIR_START, A.Pairing(auth.code, PHONE, os.urandom).start())
    assert f.payload[0] == L.E_LOCKED and b"no pairing code open" in f.payload


def test_attempts_are_spaced_2_4_8_16_seconds_then_the_code_is_dead():
    svc, auth, st = node()
    code = auth.new_code()
    now = 1000
    for gap_s in (2, 4, 8, 16):
        assert one(svc, L.PAIR_START, A.Pairing("999999", PHONE, os.urandom).start(), now=now).kind != L.ERROR
        f = one(svc, L.PAIR_START, A.Pairing(code, PHONE, os.urandom).start(), now=now + gap_s * 1000 - 1)
        assert (f.payload[0], bytes(f.payload[1:])) == (L.E_LOCKED, b"too soon: try again in 1 s")
        now += gap_s * 1000
    assert auth.attempts == 1  # the early tries cost nothing
    assert one(svc, L.PAIR_START, A.Pairing("999999", PHONE, os.urandom).start(), now=now).kind != L.ERROR
    f = one(svc, L.PAIR_START, A.Pairing(code, PHONE, os.urandom).start(), now=now + 10 ** 6)
    assert f.payload[0] == L.E_LOCKED and auth.attempts == 0


def test_a_wrong_confirmation_fails_and_ends_the_run():
    svc, auth, st = node()
    code = auth.new_code()
    run = A.Pairing(code, PHONE, os.urandom)
    one(svc, L.PAIR_START, run.start())
    assert one(svc, L.PAIR_FINISH, sign.kid(PHONE) + bytes(16)).payload[0] == L.E_PAIR
    assert one(svc, L.PAIR_FINISH, run.finish(b"")  or bytes(20)).payload[0] == L.E_PAIR
    assert auth.paired() == []


def test_pairing_survives_a_reboot_and_consumes_the_code():
    svc, auth, st = node()
    psk = paired_phone(svc, auth)
    svc, auth, st = node(st)
    assert auth.paired() == [sign.kid(PHONE)] and auth.code is None
    ses = opened(svc, psk)
    f = sealed(svc, ses, L.SUBMIT, use_record(1))[0]
    assert f.kind == L.SUBMIT | L.RESPONSE and len(svc.node.pending) == 1


def test_open_for_an_unknown_phone_is_unpaired():
    svc, auth, st = node()
    paired_phone(svc, auth)
    assert one(svc, L.OPEN, b"\x00" * 4 + bytes(16)).payload[0] == L.E_UNPAIRED


def test_sealed_before_open_is_unpaired_and_tampered_is_auth():
    svc, auth, st = node()
    psk = paired_phone(svc, auth)
    other = A.Session(psk, b"x" * 16, b"y" * 16, b"phone")
    assert one(svc, L.SEALED, other.seal(b"abc")).payload[0] == L.E_UNPAIRED
    ses = opened(svc, psk)
    assert one(svc, L.SEALED, other.seal(L.encode(L.STATUS, 1))).payload[0] == L.E_AUTH
    assert sealed(svc, ses, L.STATUS)[0].kind == L.STATUS | L.RESPONSE


def test_a_new_session_makes_the_old_sessions_frames_useless():
    svc, auth, st = node()
    psk = paired_phone(svc, auth)
    ses = opened(svc, psk)
    old = ses.seal(L.encode(L.SUBMIT, 1, use_record(1)))
    opened(svc, psk)
    assert one(svc, L.SEALED, old).payload[0] == L.E_AUTH
    assert not svc.node.pending


def test_pairing_kinds_inside_a_sealed_frame_are_refused():
    svc, auth, st = node()
    ses = opened(svc, paired_phone(svc, auth))
    f = sealed(svc, ses, L.OPEN, bytes(20))[0]
    assert (f.kind, f.payload[0]) == (L.ERROR, L.E_UNKNOWN_KIND)


def test_events_wait_for_the_session_and_go_out_sealed():
    svc, auth, st = node()
    psk = paired_phone(svc, auth)
    svc.node.events.append(receipt_event(b"R" * 70))
    assert svc.poll(1000) == b""  # no session: held, not sent in the clear
    nonce = os.urandom(16)
    wire = svc.feed(L.encode(L.OPEN, 1, sign.kid(PHONE) + nonce), 1000)
    frames = L.Decoder().feed(wire)
    ses = A.Session(psk, nonce, frames[0].payload[:16], b"phone")
    inner = L.Decoder().feed(ses.open(frames[1].payload))
    assert inner[0].kind == L.EV_RECEIPT and inner[0].payload == b"R" * 70


@pytest.mark.parametrize("junk", [b"\xff\xff", b"\x83\x00", b"\x80", b"garbage"])
def test_a_damaged_pairing_file_trusts_no_one_and_opens_no_code(junk):
    svc, auth, st = node(MemStore(junk))
    assert auth.damaged and auth.paired() == [] and auth.code is None
    f = one(svc, L.PAIR_START, A.Pairing("000000", PHONE, os.urandom).start())
    assert f.payload[0] == L.E_LOCKED
    assert one(svc, L.OPEN, sign.kid(PHONE) + bytes(16)).payload[0] == L.E_UNPAIRED


def test_output_longer_than_one_sealed_frame_is_cut_at_frame_ends():
    svc, auth, st = node()
    ses = opened(svc, paired_phone(svc, auth))
    for i in range(40):
        svc.node.events.append(receipt_event(bytes([i + 1]) * 100))
    outer = L.Decoder().feed(svc.poll(1000))
    assert len(outer) == 2 and all(len(f.payload) <= A.MAX_INNER + A.SEAL_OVERHEAD for f in outer)
    inner = []
    for f in outer:
        inner += L.Decoder().feed(ses.open(f.payload))
    assert [f.payload[0] for f in inner] == list(range(1, 41))


def test_events_held_without_a_session_stay_under_their_cap():
    svc, auth, st = node()
    paired_phone(svc, auth)
    for i in range(60):
        svc.node.events.append(receipt_event(bytes([i + 1]) * 100))
        svc.poll(1000)
    assert sum(len(h) for h in auth.held) <= 2048 and auth.held  # the newest kept


def test_a_provisioned_pairing_file_opens_its_code_on_the_node():
    code = A.new_code(A.HashRand(b"prov"))
    svc, auth, st = node(MemStore(A.state_bytes(code, MAX_ATTEMPTS, [])))
    assert auth.code == code and auth.attempts == MAX_ATTEMPTS and len(code) == 6 and code.isdigit()
    paired_phone(svc, auth, code)
    assert auth.paired() == [sign.kid(PHONE)]


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([L.PAIR_START, L.PAIR_FINISH, L.OPEN, L.SEALED, L.SUBMIT, L.HELLO]),
                          st.binary(max_size=120)), max_size=6))
def test_no_frame_sequence_from_someone_without_the_code_changes_a_paired_node(frames):
    svc, auth, st_ = node(MemStore(A.state_bytes("123456", 1, [[sign.kid(PHONE), PHONE, bytes(32)]])))
    before = (auth.paired(), st_.data)
    for kind, payload in frames:
        out = L.Decoder().feed(svc.feed(L.encode(kind, 5, payload), 1000))
        assert all(isinstance(f, L.Frame) for f in out)
    assert not svc.node.pending and svc.stats["link_submits"] == 0
    assert auth.paired() == before[0]
