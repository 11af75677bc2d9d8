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


def test_what_the_gateway_refuses(tmp_path):
    gw = LinkGateway(BridgeQueue(tmp_path / "b.sqlite"), 7)
    assert ask(gw, L.SUBMIT, b"\x0a\x00").payload[0] == L.E_BAD_PAYLOAD
    assert ask(gw, L.SUBMIT, B.set_user(USER, use(2).fields[0], USER).raw).payload[0] == L.E_REFUSED
    assert ask(gw, L.SPENT, b"\x00" * 7).payload[0] == L.E_BAD_PAYLOAD
    assert ask(gw, L.DOWNLINK, use(2).raw).payload[0] == L.E_UNKNOWN_KIND
    assert cbor.loads(ask(gw, L.SPENT, use(2).fields[0]).payload) == [False, 0, True]
    assert gw.queue.pending("peer") == []
