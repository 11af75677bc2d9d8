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
