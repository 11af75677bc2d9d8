"""End to end: the firmware under `micropython` behind a pty, the bridge on
the other side, a CTB node on loopback. Payments made at the store (SUBMIT
over the link) reach the CTB and their ACCOUNTED receipts return to the
node; with the internet cut the node is served all the same."""
import time

import pytest

from pen.bridge.driver import Bridge, UploadWorker
from pen.bridge.peers import HttpPeer
from pen.bridge.queue import BridgeQueue
from pen.bridge.serial import spawn
from pen.bridge.uploader import PeerUnavailable
from pen_protocol import ctb
from pen_protocol import frame as F
from pen_protocol import link as L
from village_kit import ctb_node, node_command, node_env

pytestmark = pytest.mark.micropython


class Cuttable:
    """A peer whose internet can be cut."""

    def __init__(self, peer):
        self.peer = peer
        self.online = True

    def submit(self, raws):
        if not self.online:
            raise PeerUnavailable("internet cut")
        return self.peer.submit(raws)

    def receipts(self, uses):
        if not self.online:
            raise PeerUnavailable("internet cut")
        return self.peer.receipts(uses)


def serve(bridge, worker, done, timeout_s=30.0):
    end = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < end, "bridge did not finish"
        bridge.step(0.01)
        worker.run_once()


@pytest.fixture
def village(tmp_path):
    srv, store, uses = ctb_node(tmp_path / "ctb.sqlite", 24)
    port, proc = spawn(node_command(tmp_path / "node.journal"), env=node_env())
    q = BridgeQueue(tmp_path / "bridge.sqlite")
    peer = Cuttable(HttpPeer(srv.url, signer=srv.bridge_key))
    worker = UploadWorker(str(tmp_path / "bridge.sqlite"), [("ctb", peer)], idle_s=0)
    bridge = Bridge(port, q)
    yield bridge, worker, peer, q, store, uses
    proc.kill()
    proc.wait()
    srv.stop()


def test_payments_at_the_store_reach_the_ctb_and_receipts_return_to_the_node(village):
    bridge, worker, peer, q, store, uses = village
    hello = bridge.start()
    assert hello["bridge"] and hello["max_payload"] == 3100
    peer.online = False  # the village's internet is down: the node is served all the same
    for u in uses[:12]:
        assert bridge.submit(u.raw) == u.id  # the store's SUBMIT: in the node's custody journal
    serve(bridge, worker, lambda: bridge.stats["acked"] == 12)
    assert q.backlog("ctb") == 12 and bridge.status()["journal_used"] == 0  # the PC holds them now
    assert all(ctb.token_state(store.get(b"T" + u.fields[0])) == ctb.USABLE for u in uses)
    peer.online = True
    t0 = time.monotonic()
    for u in uses[12:]:
        bridge.submit(u.raw)
    serve(bridge, worker, lambda: q.backlog("ctb") == 0 and bridge.stats["downlinked"] == len(uses))
    elapsed = time.monotonic() - t0
    print("\n%d payments store -> CTB -> receipt down in %.2f s after reconnect" % (len(uses), elapsed))
    assert all(ctb.token_state(store.get(b"T" + u.fields[0])) == ctb.ACCOUNTED for u in uses)
    st = bridge.status()
    assert st["link_downlinks"] == len(uses)  # each receipt reached the node once
    assert st["link_submits"] == len(uses) and st["journal_used"] == 0
    assert q.down_backlog() == 0
    assert bridge.spent(uses[0].fields[0])[0] is True  # the village spent set knows it


def test_a_bridge_pc_holding_the_node_key_sends_receipts_down_in_signed_digests(tmp_path):
    # `pen bridge --node-key`: receipts the CTB node signed go to the village many to a T_DIGEST frame,
    # each named twice (DIGEST_REPEAT), instead of one ACCOUNTED frame each
    from pen.bridge.digests import DigestSigner
    srv, store, uses = ctb_node(tmp_path / "ctb.sqlite", 24)
    port, proc = spawn(node_command(tmp_path / "node.journal"), env=node_env())
    try:
        q = BridgeQueue(tmp_path / "bridge.sqlite")
        worker = UploadWorker(str(tmp_path / "bridge.sqlite"), [("ctb", HttpPeer(srv.url, signer=srv.bridge_key))],
                              idle_s=0)
        bridge = Bridge(port, q, digests=DigestSigner(srv.node_key), repeat_gap=0.2, hold=0.2)
        sent = []
        real = bridge._send

        def watch(kind, payload=b"", key=None):
            sent.append((kind, bytes(payload[:1])))
            return real(kind, payload, key)
        bridge._send = watch
        bridge.start()
        for u in uses:
            bridge.submit(u.raw)
        serve(bridge, worker, lambda: q.backlog("ctb") == 0 and q.down_backlog() == 0)
        assert all(ctb.token_state(store.get(b"T" + u.fields[0])) == ctb.ACCOUNTED for u in uses)
        down = [first for kind, first in sent if kind == L.DOWNLINK]
        digests = down.count(bytes((F.T_DIGEST,)))
        assert bridge.core.stats["receipts_in_digests"] >= 2 * len(uses) - 2  # each named twice (a lone one may go alone)
        print("\n%d receipts in %d digests, %d downlinks" % (bridge.core.stats["receipts_in_digests"], digests, len(down)))
        assert 4 <= digests < len(uses)  # 24 receipts, up to 14 a digest, twice: a handful of frames
        assert bridge.status()["link_downlinks"] == len(down)  # the node took every one into the mesh
    finally:
        proc.kill()
        proc.wait()
        srv.stop()


def test_a_restarted_bridge_gets_what_the_node_still_holds(village, tmp_path):
    bridge, worker, peer, q, store, uses = village
    bridge.start()
    for u in uses[:5]:
        bridge.submit(u.raw)
    # a bridge that died before acking: a fresh one on the same link asks PENDING
    fresh = Bridge(bridge.port, BridgeQueue(tmp_path / "bridge2.sqlite"))
    before = bridge.status()["journal_used"]
    fresh.start()
    serve(fresh, worker, lambda: fresh.stats["acked"] >= before)
    assert fresh.queue.backlog("ctb") == before
