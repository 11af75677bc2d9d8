"""Bridge queue and uploads: durable, idempotent, resumable, offline-tolerant."""
import sys
from pathlib import Path

import pytest

from pen.bridge.peers import LocalPeer
from pen.bridge.queue import BridgeQueue
from pen.bridge.uploader import Uploader, PeerUnavailable
from pen.samples import economy
from pen.store import SQLiteCTB
from pen_protocol import ctb, records as R

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
from village_kit import payments  # noqa: E402


@pytest.fixture
def world(tmp_path):
    k, ordered, n = economy()
    node = SQLiteCTB(tmp_path / "node.sqlite")
    node.submit([r.raw for r in ordered[:-3]])  # up to the issue; SET_USER/USE/ACCOUNTED come from the village
    peer = LocalPeer(node, k["common-node"], clock=lambda: 1795000000)
    q = BridgeQueue(tmp_path / "bridge.sqlite")
    return k, n, node, peer, q


def village_payments(k, n, count):
    return payments(count)


def test_uploads_everything_once_and_returns_receipts(world):
    k, n, node, peer, q = world
    issues, users, uses = village_payments(k, n, 30)
    node.submit([r.raw for r in issues + users])
    for u in uses:
        q.accept(u.raw)
        q.accept(u.raw)  # handed over twice: stored once
    up = Uploader(q, "p", batch=7)
    sent, receipts = up.step(peer)
    assert sent == 30 and len(receipts) == 30
    assert all(R.parse(r).type == R.ACCOUNTED for r in receipts)
    assert q.backlog("p") == 0
    assert up.step(peer) == (0, [])
    assert all(ctb.token_state(node.get(b"T" + u.fields[0])) == ctb.ACCOUNTED for u in uses)


def test_offline_keeps_everything_and_resumes(world):
    k, n, node, peer, q = world
    issues, users, uses = village_payments(k, n, 5)
    node.submit([r.raw for r in issues + users])
    for u in uses:
        q.accept(u.raw)
    peer.online = False
    with pytest.raises(PeerUnavailable):
        Uploader(q, "p").step(peer)
    assert q.backlog("p") == 5
    peer.online = True
    assert Uploader(q, "p").step(peer)[0] == 5


def test_a_forged_record_is_rejected_for_good_and_the_rest_goes(world):
    k, n, node, peer, q = world
    issues, users, uses = village_payments(k, n, 4)
    node.submit([r.raw for r in issues + users])
    forged = bytearray(uses[1].raw)
    forged[-1] ^= 1
    for raw in [uses[0].raw, bytes(forged), uses[2].raw, uses[3].raw]:
        q.accept(raw)
    sent, receipts = Uploader(q, "p").step(peer)
    assert sent == 3 and len(receipts) == 3
    assert q.rejected("p") == [(R.parse(bytes(forged)).id, "bad-signature")]
    assert q.backlog("p") == 0


def test_missing_dependency_is_deferred_not_dropped(world):
    k, n, node, peer, q = world
    issues, users, uses = village_payments(k, n, 2)
    node.submit([issues[0].raw, users[0].raw, issues[1].raw])  # users[1] not at the peer yet
    q.accept(uses[0].raw)
    q.accept(uses[1].raw)
    up = Uploader(q, "p")
    assert up.step(peer)[0] == 1
    assert q.backlog("p") == 1 and q.rejected("p") == []
    node.submit([users[1].raw])  # arrives by sync
    assert up.step(peer)[0] == 1 and q.backlog("p") == 0


def test_malformed_record_from_the_village_is_refused_and_not_stored(world):
    k, n, node, peer, q = world
    with pytest.raises(R.RecordError):
        q.accept(b"\x0a\x00")
    assert q.status(["p"])["uplink_records"] == 0


def test_progress_is_reported_after_every_batch(world):
    k, n, node, peer, q = world
    issues, users, uses = village_payments(k, n, 12)
    node.submit([r.raw for r in issues + users])
    for u in uses:
        q.accept(u.raw)
    seen = []
    Uploader(q, "p", batch=5, on_batch=lambda *a: seen.append(a)).step(peer)
    assert seen == [("p", 5, 7), ("p", 10, 2), ("p", 12, 0)]


def test_receipts_lost_with_an_answer_are_fetched_back(world):
    # the peer committed a batch but its answer (with the receipts) never reached the queue
    k, n, node, peer, q = world
    issues, users, uses = village_payments(k, n, 3)
    node.submit([r.raw for r in issues + users])
    lost = peer.submit([u.raw for u in uses])["receipts"]
    for u in uses:
        q.accept(u.raw)
    sent, receipts = Uploader(q, "p").step(peer)
    assert sent == 3 and sorted(receipts) == sorted(lost)
    assert sorted(raw for _, raw in q.next_down(10)) == sorted(lost)
