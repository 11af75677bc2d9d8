"""MeshLink (pen.transport.meshtastic) sans-IO: Pen frames cut into
Meshtastic payloads and put back together, with Pen's own acks, on a
virtual clock."""
from pen.transport import meshtastic as M


def pump(a, b, items, drop=lambda i, p: False, now=0):
    """Deliver [(peer, payload)] from a to b (and b's answers back) until
    quiet; returns what b delivered."""
    got = b""
    queue = [("ab", p) for _, p in items]
    n = 0
    while queue:
        way, p = queue.pop(0)
        n += 1
        if drop(n, p):
            continue
        src, dst = (a, b) if way == "ab" else (b, a)
        data, tx = dst.receive("x", p, now)
        if way == "ab":
            got += data
        queue += [("ba" if way == "ab" else "ab", q) for _, q in tx]
    return got


def test_a_long_frame_is_cut_into_233_byte_payloads_and_rejoined():
    a, b = M.MeshLink(), M.MeshLink()
    data = bytes(range(256)) * 12 + b"\x00"
    out = a.send("x", data, 0)
    assert max(len(p) for _, p in out) == M.MAX_PAYLOAD and len(out) == 14
    assert pump(a, b, out) == data and not a.busy()  # acked: nothing left to resend


def test_a_lost_fragment_is_resent_alone_after_the_timeout():
    a, b = M.MeshLink(retry_ms=1000), M.MeshLink()
    out = a.send("x", b"y" * 700, 0)
    assert pump(a, b, out, drop=lambda i, p: i == 2) == b""
    assert a.poll(500) == []
    again = a.poll(1000)
    assert [p[3] for _, p in again] == [1]  # only the missing index
    assert pump(a, b, again, now=1000) == b"y" * 700 and not a.busy()


def test_a_message_resent_after_a_lost_ack_is_acked_again_not_delivered_twice():
    a, b = M.MeshLink(retry_ms=1000), M.MeshLink()
    out = a.send("x", b"z" * 100, 0)
    assert pump(a, b, out, drop=lambda i, p: p[0] == M.T_ACK) == b"z" * 100
    assert pump(a, b, a.poll(1000), now=1000) == b""  # the duplicate
    assert b.stats["dups"] == 1 and not a.busy()


def test_the_sender_gives_up_after_its_tries():
    a = M.MeshLink(retry_ms=100, tries=3)
    a.send("x", b"q", 0)
    sent = [len(a.poll(t)) for t in (100, 200, 300, 400)]
    assert sent == [1, 1, 0, 0] and a.stats["given_up"] == 1 and not a.busy()


def test_foreign_or_malformed_payloads_are_counted_and_ignored():
    b = M.MeshLink()
    for p in (b"", b"\x50\x00\x01\x05\x02x", b"\x50\x00\x01\x00\x00x", b"\x50\x00\x01\x00\x11x", b"hello"):
        assert b.receive("x", p, 0) == (b"", [])
    assert b.stats["bad"] == 5


def test_a_restarted_sender_does_not_reuse_the_ids_the_far_end_remembers():
    b = M.MeshLink()
    first = M.MeshLink(first_msg=0)
    assert pump(first, b, first.send("x", b"one", 0)) == b"one"
    again = M.MeshLink(first_msg=0)  # what a fixed start would do: message 1 again
    assert pump(again, b, again.send("x", b"two", 0)) == b""  # acked and dropped as a duplicate
    restarted = M.MeshLink()  # the default: a random first id
    assert pump(restarted, b, restarted.send("x", b"two", 0)) == b"two" or restarted.msg == 1


def test_a_long_write_is_cut_into_messages_at_frame_ends():
    from pen_protocol import link as L
    a = M.MeshLink(first_msg=0)
    frames = [L.encode(L.EV_RECEIPT, i, bytes([i + 1]) * 1000) for i in range(5)]  # ~5 KB in one write
    out = a.send("x", b"".join(frames), 0)
    msgs = {}
    for _, p in out:
        msgs.setdefault((p[1] << 8) | p[2], []).append(p[M.HEADER:])
    assert len(msgs) == 2
    for parts in msgs.values():  # each message is whole frames
        assert b"".join(parts).endswith(b"\x00")
        assert len(L.Decoder().feed(b"".join(parts))) >= 1


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=240), max_size=20))
def test_any_payloads_from_the_mesh_never_raise_and_never_deliver_more_than_came(payloads):
    b = M.MeshLink()
    got = b""
    for p in payloads:
        data, tx = b.receive("x", p, 0)
        got += data
        assert all(len(q) == M.HEADER for _, q in tx)  # only acks go back
    assert len(got) <= sum(max(0, len(p) - M.HEADER) for p in payloads)
