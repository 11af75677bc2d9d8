"""The host's BLE link (pen.transport.ble.GattLink) at GATT level against
bumble's virtual controllers: MTU exchange, discovery of the Nordic UART
service, writes without response in MTU - 3 pieces, notifications, and the
whole pairing + sealed payment over it. What this does not cover: bleak
itself (BleakAdapter) — bleak on Linux needs BlueZ over D-Bus, which bumble's
virtual controllers are not attached to here; BleakAdapter is four calls of
bleak's documented API and is the one piece left to a real radio."""
import os
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "transport"))
import kit  # noqa: E402,F401
from bumble_gatt import BumbleAdapter  # noqa: E402
from pen.storeclient import Outbox, StoreClient, SENT  # noqa: E402
from pen.transport.ble import GattLink  # noqa: E402
from pen.transport.secure import LinkRefused, open_session, pair  # noqa: E402
from pen.bridge.serial import ask  # noqa: E402
from pen_protocol import link as L  # noqa: E402
from pen_protocol.airtime import PRESETS  # noqa: E402
from pen_node.journal import Journal  # noqa: E402
from kit import MemStorage  # noqa: E402
from pen_node.mesh import MeshNode  # noqa: E402
from pen_node.pairing import LinkAuth, MemStore  # noqa: E402
from pen_node.service import LinkService  # noqa: E402
from medium_node import XorShift  # noqa: E402
from kit import USER, CTB_KEY, AirBridge, AirNode, use  # noqa: E402
from pen.storeclient import ACCOUNTED  # noqa: E402


def node():
    svc = LinkService(MeshNode(3, PRESETS["eu868-sf9"], Journal(MemStorage(8192)), XorShift(3)),
                      LinkAuth(MemStore(), os.urandom))
    return svc, svc.auth.new_code()


@pytest.mark.parametrize("mtu", [None, 185])
def test_pair_and_pay_over_bumble_gatt(mtu, tmp_path):
    svc, code = node()
    link = GattLink(BumbleAdapter(lambda data: svc.feed(data, 1000), mtu=mtu), "ble:bumble")
    try:
        assert link.mtu == (mtu or 23)
        f = ask(link, L.SUBMIT, use(5).raw)
        assert (f.kind, f.payload[0]) == (L.ERROR, L.E_UNPAIRED)
        paired = pair(link, code, USER.public_key)
        client = open_session(link, paired)
        sc = StoreClient(link, Outbox(tmp_path / "o.sqlite"), [CTB_KEY.public_key], client=client)
        p = sc.pay(use(5).raw, wait_s=0.5)  # in custody at the node; no mesh here to bring a receipt
        assert p.state == SENT and len(svc.node.pending) == 1
        node_side = link.adapter.node
        assert max(node_side.writes) <= link.mtu - 3 and max(node_side.notified) <= link.mtu - 3
        if mtu is None:
            assert max(node_side.writes) == 20  # the 20-byte worst case was exercised
    finally:
        link.close()


def test_pay_over_ble_and_get_the_verified_receipt_back_through_the_mesh(tmp_path):
    air = AirBridge()
    node = AirNode(air.port, LinkAuth(MemStore(), os.urandom))
    code = node.svc.auth.new_code()
    link = GattLink(BumbleAdapter(node.feed), "ble:bumble")
    node.on_events = link.adapter.node.push  # receipts arrive as notifications
    try:
        client = open_session(link, pair(link, code, USER.public_key))
        u = use(6)
        air.users[u.fields[0]] = USER.public_key
        sc = StoreClient(link, Outbox(tmp_path / "o.sqlite"), [CTB_KEY.public_key], client=client)
        p = sc.pay(u.raw, wait_s=30)
        assert p.state == ACCOUNTED and p.receipt == air.receipts[0]
    finally:
        link.close()
        node.close()
        air.close()


def test_a_wrong_code_over_ble_is_refused():
    svc, code = node()
    link = GattLink(BumbleAdapter(lambda data: svc.feed(data, 1000)), "ble:bumble")
    try:
        with pytest.raises(LinkRefused) as e:
            pair(link, "%06d" % ((int(code) + 1) % 10 ** 6), USER.public_key)
        assert e.value.reason == L.E_PAIR
    finally:
        link.close()
