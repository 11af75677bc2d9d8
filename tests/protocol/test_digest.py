"""The receipt digest (pen_protocol.digest): its exact bytes, what verify
refuses and why, and that the node's shape check and the host's parser
agree on every input."""
import random

import pytest

from pen.bridge.digests import DigestSigner
from pen.keys import Signer
from pen.samples import accounted_batch
from pen_protocol import digest as G
from pen_protocol import frame as F
from pen_protocol import records as R
from pen_protocol import sign

CTB = Signer.from_phrase("digest-test ctb node")
OTHER = Signer.from_phrase("digest-test other node")
USER = Signer.from_phrase("digest-test user")


def receipts(n, key=CTB, first=1):
    return accounted_batch(key, n, first, USER)


def digest_of(n, key=CTB, t=1795000100):
    raw, used = DigestSigner(key, clock=lambda: t).sign(receipts(n, key))
    assert used == list(range(min(n, G.MAX_ENTRIES)))
    return raw


def test_constants_follow_from_the_frame():
    assert G.T_DIGEST == F.T_DIGEST
    assert G.DOMAIN == sign.domain(b"digest")
    assert G.ENTRY_LEN == G.REF_LEN + G.USE_PREFIX
    assert G.MAX_ENTRIES == (F.MAX_PAYLOAD - G.KID_LEN - G.TIME_LEN - G.SIG_LEN) // G.ENTRY_LEN
    assert G.MIN_LEN == G.HEAD_LEN + G.ENTRY_LEN + G.SIG_LEN
    assert G.MAX_LEN == G.HEAD_LEN + G.MAX_ENTRIES * G.ENTRY_LEN + G.SIG_LEN
    assert F.HEADER_LEN + G.MAX_LEN - 1 + F.TAG_LEN <= 255  # the largest digest fits one sealed frame


def test_the_bytes_are_the_layout_and_the_signature_covers_them():
    rs = receipts(3)
    raw = digest_of(3)
    assert len(raw) == G.HEAD_LEN + 3 * G.ENTRY_LEN + G.SIG_LEN
    assert raw[0] == F.T_DIGEST and raw[1:5] == CTB.kid and raw[5:9] == (1795000100).to_bytes(4, "big")
    d = G.parse(raw)
    for i, r in enumerate(rs):
        a = R.parse(r)
        assert d.entries[i] == (a.fields[0], a.fields[1][:4])
        assert d.names(a.fields[0], a.fields[1])
    assert sign.verify(CTB.public_key, G.DOMAIN + raw[1:-64], raw[-64:])
    d2, why = G.verify(raw, [OTHER.public_key, CTB.public_key])
    assert why is None and d2.raw == raw and d2.kid == CTB.kid and d2.time == 1795000100
    # one frame, not fragmented, the digest's first byte the header's type
    frames = F.fragment(raw, 1, F.BROADCAST, 1, 0)
    assert len(frames) == 1
    hdr, payload = F.parse(frames[0])
    assert hdr.type == F.T_DIGEST and bytes((hdr.type,)) + bytes(payload) == raw


def test_a_full_digest_names_fourteen_and_the_rest_wait():
    raw, used = DigestSigner(CTB, clock=lambda: 5).sign(receipts(20))
    assert len(used) == 14 and len(G.parse(raw).entries) == 14
    assert len(raw) == G.MAX_LEN
    assert len(F.seal(F.fragment(raw, 1, F.BROADCAST, 1, 0)[0], F.net_key(b"k" * 16))) == 251


@pytest.mark.parametrize("tamper,why", [
    (lambda raw: raw[:-1] + bytes((raw[-1] ^ 1,)), "bad-signature"),  # forged: the signature
    (lambda raw: raw[:12] + bytes((raw[12] ^ 1,)) + raw[13:], "bad-signature"),  # a ref changed
    (lambda raw: raw[:5] + bytes((raw[5] ^ 0x80,)) + raw[6:], "bad-signature"),  # the time moved
    (lambda raw: raw[:-12 - 64] + raw[-64:], "bad-signature"),  # an entry dropped, length still whole
    (lambda raw: raw[:-1], "malformed: bad-length"),  # truncated
    (lambda raw: raw[:40], "malformed: truncated"),
    (lambda raw: b"", "malformed: not-a-digest"),
    (lambda raw: b"\x0b" + raw[1:], "malformed: not-a-digest"),
    (lambda raw: raw[:9] + raw[9:21] * 15 + raw[-64:], "malformed: too-long"),  # oversized
    (lambda raw: raw[:9] + raw[9:21] * 2 + raw[-64:], "malformed: duplicate-entry"),
])
def test_verify_refuses_and_says_why(tamper, why):
    raw = digest_of(2)
    assert G.verify(tamper(raw), [CTB.public_key]) == (None, why)


def test_a_digest_from_an_unpinned_key_is_refused():
    raw = digest_of(2, key=OTHER)
    assert G.verify(raw, [CTB.public_key]) == (None, "unpinned-key")
    # a key that claims a pinned kid but is another key: the signature fails
    forged = raw[:1] + CTB.kid + raw[5:]
    assert G.verify(forged, [CTB.public_key]) == (None, "bad-signature")


def test_a_record_signature_is_never_a_digest_signature():
    """Domain separation: the same key's ACCOUNTED signature over the same
    bytes cannot stand in for a digest's."""
    body = G.body(CTB.kid, 7, [(b"r" * 8, b"u" * 16)])
    as_record = CTB(sign.domain(b"accounted") + body[1:])
    assert G.verify(body + as_record, [CTB.public_key]) == (None, "bad-signature")
    assert G.verify(body + CTB(G.DOMAIN + body[1:]), [CTB.public_key])[1] is None


@pytest.mark.parametrize("args,why", [
    ((b"abc", 1, [(b"r" * 8, b"u" * 16)]), "bad-kid"),
    ((b"abcd", -1, [(b"r" * 8, b"u" * 16)]), "bad-time"),
    ((b"abcd", 1 << 32, [(b"r" * 8, b"u" * 16)]), "bad-time"),
    ((b"abcd", 1, []), "bad-count"),
    ((b"abcd", 1, [(b"r" * 8, b"u" * 16)] * 15), "bad-count"),
    ((b"abcd", 1, [(b"r" * 7, b"u" * 16)]), "bad-entry"),
    ((b"abcd", 1, [(b"r" * 8, b"u" * 3)]), "bad-entry"),
])
def test_no_digest_is_built_that_no_store_could_take(args, why):
    with pytest.raises(G.DigestError) as e:
        G.body(*args)
    assert e.value.reason == why


def test_the_signer_names_only_its_own_valid_receipts():
    mine = receipts(3)
    theirs = receipts(2, key=OTHER, first=10)
    bad = mine[0][:-1] + bytes((mine[0][-1] ^ 1,))
    raw, used = DigestSigner(CTB, clock=lambda: 9).sign([theirs[0], mine[1], bad, b"\x0b\x80", mine[2], theirs[1]])
    assert used == [1, 4]
    assert len(G.parse(raw).entries) == 2
    assert DigestSigner(CTB).sign(theirs + [bad]) is None


def test_shape_and_parse_agree_on_random_bytes():
    """The node reads only the shape; the host parses. Neither raises on any
    input but with DigestError, and both accept exactly the same lengths."""
    rnd = random.Random(15)
    good = digest_of(3)
    for _ in range(3000):
        k = rnd.randrange(4)
        if k == 0:
            raw = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(300)))
        elif k == 1:
            raw = b"\x22" + bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(260)))
        else:
            raw = bytearray(good[:rnd.randrange(len(good) + 1)] + bytes(rnd.randrange(3) * 12))
            if raw:
                raw[rnd.randrange(len(raw))] ^= 1 << rnd.randrange(8)
            raw = bytes(raw)
        n = G.shape(raw)
        try:
            d = G.parse(raw)
        except G.DigestError as e:
            assert type(n) is str or e.reason == "duplicate-entry"
            continue
        assert n == len(d.entries)
        assert G.verify(raw, [CTB.public_key])[1] in (None, "bad-signature", "unpinned-key")


def test_pen_bench_sizes_shows_what_a_receipt_costs_alone_and_in_a_digest():
    from pen.commands.bench import frame_sizes
    s = frame_sizes()
    one = s["accounted"]
    full = s["digest-14"]
    assert one["bytes"] == 112 and full["bytes"] == 251 and full["frames"] == 1
    assert full["airtime_ms_per_receipt"]["sf9-bw125"] < one["airtime_ms"]["sf9-bw125"] / 7
    per = [s["digest-%d" % n]["airtime_ms_per_receipt"]["sf9-bw125"] for n in (1, 2, 4, 7, 14)]
    assert per == sorted(per, reverse=True)  # more receipts a digest, less air each
