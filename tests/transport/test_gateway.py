"""The bridge's Meshtastic gateway (pen.transport.gateway.LinkGateway),
sans-IO on a real BridgeQueue: what a store over Meshtastic may submit, what
SPENT answers, and that each receipt goes back to the store that paid once
(again only when the store submits the payment again)."""
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "link"))
from kit import CTB_KEY, USER, use  # noqa: E402
from pen import build as B  # noqa: E402
from pen.bridge.queue import BridgeQueue  # noqa: E402
from pen.keys import Signer  # noqa: E402
from pen.transport.gateway import LinkGateway  # noqa: E402
from pen_protocol import cbor, link as L  # noqa: E402

STORE = 0x0A11CE01


def ask(gw, kind, payload=b"", peer=STORE):
    return L.Decoder().feed(gw.feed(peer, L.encode(kind, 3, payload)))[0]


def test_a_use_is_queued_and_its_receipt_goes_back_to_that_store_once(tmp_path):
    q = BridgeQueue(tmp_path / "b.sqlite")
    woke = []
    gw = LinkGateway(q, 7, on_record=lambda: woke.append(1))
    u = use(1)
    f = ask(gw, L.SUBMIT, u.raw)
    assert f.kind == L.SUBMIT | L.RESPONSE and f.payload == u.id and q.has(u.id) and woke
    assert cbor.loads(ask(gw, L.SPENT, u.fields[0]).payload) == [True, 1, True]
    assert gw.poll() == []
    r = B.accounted(CTB_KEY, u.fields[0], u.id, 1).raw
    q.mark("peer", [(u.id, "accepted", None)], down=[r])
    out = gw.poll()
    assert [(p, L.Decoder().feed(b)[0].kind) for p, b in out] == [(STORE, L.EV_RECEIPT)]
    assert L.Decoder().feed(out[0][1])[0].payload == r
    assert gw.poll() == []  # once
    assert cbor.loads(ask(gw, L.SPENT, u.fields[0]).payload) == [True, 2, True]
    ask(gw, L.SUBMIT, u.raw)  # the store never got it: it submits again
    assert [p for p, _ in gw.poll()] == [STORE]
    # a new gateway (the bridge restarted) does not send it a third time
    assert LinkGateway(q, 7).poll() == []


def test_a_receipt_whose_mark_fails_goes_at_the_next_poll_not_never(tmp_path):
    import sqlite3
    q = BridgeQueue(tmp_path / "b.sqlite")
    gw = LinkGateway(q, 7)
    us = [use(1), use(2)]
    for u in us:
        ask(gw, L.SUBMIT, u.raw)
    q.mark("peer", [(u.id, "accepted", None) for u in us],
           down=[B.accounted(CTB_KEY, u.fields[0], u.id, 1).raw for u in us])
    real, calls = q.meta_set, []

    def locked_on_the_second(key, value):
        calls.append(key)
        if len(calls) == 2:  # the file locked past its busy wait
            raise sqlite3.OperationalError("database is locked")
        return real(key, value)

    q.meta_set = locked_on_the_second
    first = gw.poll()  # the first goes; the second stays due
    assert len(first) == 1
    second = gw.poll()
    assert len(second) == 1 and gw.poll() == []
    got = {bytes(L.Decoder().feed(b)[0].payload) for _, b in first + second}
    assert got == {B.accounted(CTB_KEY, u.fields[0], u.id, 1).raw for u in us}


def test_what_the_gateway_refuses(tmp_path):
    gw = LinkGateway(BridgeQueue(tmp_path / "b.sqlite"), 7)
    assert ask(gw, L.SUBMIT, b"\x0a\x00").payload[0] == L.E_BAD_PAYLOAD
    assert ask(gw, L.SUBMIT, B.set_user(USER, use(2).fields[0], USER).raw).payload[0] == L.E_REFUSED
    assert ask(gw, L.SPENT, b"\x00" * 7).payload[0] == L.E_BAD_PAYLOAD
    assert ask(gw, L.DOWNLINK, use(2).raw).payload[0] == L.E_UNKNOWN_KIND
    assert cbor.loads(ask(gw, L.SPENT, use(2).fields[0]).payload) == [False, 0, True]
    assert gw.queue.pending("peer") == []


def test_with_a_pairing_file_stores_pair_and_everything_is_sealed(tmp_path):
    import os
    from pen.storeclient import ACCOUNTED, SENT, Outbox, StoreClient
    from pen.transport.secure import PairingFile, open_session, pair
    from pen.transport.testing import VirtualClock, served_port
    from pen_protocol.linkauth import LinkAuth
    q = BridgeQueue(tmp_path / "b.sqlite")
    store = PairingFile(tmp_path / "gateway.pair")
    code = LinkAuth(store, os.urandom).new_code()  # what `pen bridge --pair` prints
    gw = LinkGateway(q, 7, auth_store=store)
    clock = VirtualClock()

    def port_of(peer):
        return served_port(clock, lambda d: gw.feed(peer, d, clock.ms()),
                           poll=lambda: b"".join(b for p, b in gw.poll() if p == peer))
    port = port_of(STORE)
    assert ask(gw, L.SUBMIT, use(7).raw).payload[0] == L.E_UNPAIRED and not q.has(use(7).id)
    client = open_session(port, pair(port, code, USER.public_key))
    sc = StoreClient(port, Outbox(tmp_path / "o.sqlite"), [CTB_KEY.public_key], client=client, clock=clock,
                     wall=clock)
    u = use(7)
    assert sc.pay(u.raw, wait_s=1).state == SENT and q.has(u.id)
    q.mark("peer", [(u.id, "accepted", None)], down=[B.accounted(CTB_KEY, u.fields[0], u.id, 1).raw])
    sc.listen(1)
    assert sc.outbox.get(u.id).state == ACCOUNTED
    # another store, another code; the first store's pairing is still in the file
    code2 = gw.auth(0x0B0B).new_code()
    port2 = port_of(0x0B0B)
    other = Signer.from_phrase("second store")
    open_session(port2, pair(port2, code2, other.public_key))
    assert sorted(LinkAuth(store, os.urandom).paired()) == sorted([USER.kid, other.kid])
    assert os.stat(tmp_path / "gateway.pair").st_mode & 0o077 == 0  # the secrets are the owner's only
