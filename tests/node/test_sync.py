"""Peer sync over HTTP: three peers that saw conflicting records (double
spends, double votes) in different orders converge to identical CTB state,
evidence included, on SQLite and on a real PostgreSQL."""
import random

import pytest

from pen.keys import Signer
from pen.node.client import NodeClient
from pen.node.core import Node
from pen.node.server import serve_in_thread
from pen.node.sync import sync_with, deliver
from pen.pgstore import PostgresCTB
from pen.store import SQLiteCTB
from pen_protocol import ctb, records as R

from .world import BRIDGE_KEY, PEER, allow, base_and_spends, state_of, conflicts


def make_store(kind, tmp_path, name, request):
    if kind == "sqlite":
        return SQLiteCTB(tmp_path / (name + ".sqlite"), clock=lambda: 1795000000)
    return PostgresCTB(request.getfixturevalue("new_pg_url")(), clock=lambda: 1795000000)


@pytest.fixture
def peers(request, tmp_path):
    kinds = request.param
    nodes, servers = [], []
    for i, kind in enumerate(kinds):
        node = Node(make_store(kind, tmp_path, "p%d" % i, request))
        nodes.append(node)
        allow(node)
        servers.append(serve_in_thread(node))
    yield nodes, [s.url for s in servers]
    for s in servers:
        s.stop()
    for n in nodes:
        n.store.close()


def feed(node, records, seed):
    """Records in a shuffled order, in a few batches, as uploads would come."""
    rnd = random.Random(seed)
    recs = list(records)
    rnd.shuffle(recs)
    # batches must each be valid on their own: the validator sorts within a
    # batch, so cut only after the dependencies (base) are all in
    node.submit([r.raw for r in recs])


THREE = [pytest.param(("sqlite", "sqlite", "sqlite"), id="sqlite"),
         pytest.param(("postgres", "sqlite", "postgres"), id="postgres+sqlite", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("peers", THREE, indirect=True)
def test_three_peers_with_conflicts_converge(peers):
    nodes, urls = peers
    base, parts = base_and_spends()
    for i, node in enumerate(nodes):
        feed(node, base + parts[i], seed=i)
    digests = {n.store.state_digest() for n in nodes}
    assert len(digests) == 3  # they really did see different things
    for _ in range(3):  # rounds of pairwise syncs, each pair once, both directions of data
        for a, b in ((0, 1), (1, 2), (2, 0)):
            sync_with(nodes[a], NodeClient(urls[b], signer=PEER))
    digests = {n.store.state_digest() for n in nodes}
    assert len(digests) == 1
    # the conflicts are there as evidence, naming the user's key, on every peer
    ev = conflicts(nodes[0].store)
    assert ev and all(len(conflicts(n.store)) == len(ev) for n in nodes)
    uses = [R.parse(c.fields[0]) for c in ev if R.parse(c.fields[0]).type == R.USE]
    votes = [R.parse(c.fields[0]) for c in ev if R.parse(c.fields[0]).type == R.VOTE]
    assert uses and votes
    # every token with two different spends has exactly one effective use
    for _, t in nodes[0].store.state_prefix(b"T"):
        assert ctb.token_state(t) in (ctb.USABLE, ctb.USED)


@pytest.mark.parametrize("peers", THREE, indirect=True)
def test_converged_state_equals_one_store_given_everything(peers, tmp_path):
    nodes, urls = peers
    base, parts = base_and_spends(seed=5)
    for i, node in enumerate(nodes):
        feed(node, base + parts[i], seed=10 + i)
    for a, b in ((0, 1), (1, 2), (2, 0), (0, 1)):
        sync_with(nodes[a], NodeClient(urls[b], signer=PEER))
    ref = SQLiteCTB(tmp_path / "ref.sqlite")
    ref.submit([r.raw for r in base + parts[0] + parts[1] + parts[2]])
    for n in nodes:
        assert state_of(n.store) == state_of(ref)
        assert set(ref.record_ids()) <= set(n.store.record_ids())


@pytest.mark.parametrize("peers", [THREE[0]], indirect=True)
def test_second_sync_finds_nothing_and_is_one_round_trip(peers):
    nodes, urls = peers
    base, parts = base_and_spends()
    feed(nodes[0], base + parts[0], 0)
    feed(nodes[1], base + parts[1], 1)
    first = sync_with(nodes[0], NodeClient(urls[1], signer=PEER))
    assert first["pulled"] and first["pushed"]
    again = sync_with(nodes[0], NodeClient(urls[1], signer=PEER))
    assert again["we_lacked"] == again["they_lacked"] == 0
    assert again["round_trips"] == 1 and again["mode"] == "identical"
    st = nodes[0].peers()[urls[1]]
    assert st["last_ok"] and st["last_error"] is None and st["backlog"] == 0


@pytest.mark.parametrize("peers", [THREE[0]], indirect=True)
def test_empty_peer_gets_everything_in_dependency_order(peers):
    """A new replica learns the whole CTB: members of councils admitted by a
    votation close come before the close in type order and are deferred."""
    nodes, urls = peers
    base, parts = base_and_spends()
    feed(nodes[0], base + parts[0], 0)
    res = sync_with(nodes[1], NodeClient(urls[0], signer=PEER))
    assert res["we_lacked"] == nodes[0].store.count() and res["refused"] == 0 and res["backlog"] == 0
    assert nodes[1].store.state_digest() == nodes[0].store.state_digest()


def test_unreachable_peer_is_recorded_and_raises(tmp_path):
    from pen.bridge.uploader import PeerUnavailable
    from node.conftest import free_port
    node = Node(SQLiteCTB(tmp_path / "a.sqlite"))
    url = "http://127.0.0.1:%d" % free_port()
    with pytest.raises(PeerUnavailable):
        sync_with(node, NodeClient(url, timeout_s=2))
    st = node.peers()[url]
    assert "PeerUnavailable" in st["last_error"] and "last_ok" not in st


class _Refusing:
    """A peer that lacks a dependency for some records and refuses others."""

    def __init__(self, missing, bad):
        self.missing, self.bad, self.got = missing, bad, []

    def submit(self, raws):
        for i, raw in enumerate(raws):
            rid = R.parse(raw).id
            if rid in self.bad:
                return {"ok": False, "index": i, "reason": "bad-signature", "detail": ""}
            if rid in self.missing:
                return {"ok": False, "index": i, "reason": "unknown-token", "detail": ""}
        self.got += raws
        return {"ok": True, "verdicts": [], "receipts": []}


def test_deliver_defers_missing_dependencies_and_counts_refusals():
    base, parts = base_and_spends()
    recs = base[:10]
    peer = _Refusing(missing={recs[3].id}, bad={recs[5].id})
    taken, deferred, refused = deliver([r.raw for r in recs], peer, batch=4)
    assert taken == 8 and deferred == 1 and refused == {recs[5].id: "bad-signature"}
    assert sorted(peer.got) == sorted(r.raw for r in recs if r.id not in (recs[3].id, recs[5].id))


class _Liar:
    """A peer that answers a fetch with records nobody asked for."""

    def __init__(self, client, extra):
        self.client, self.extra = client, extra
        self.url = client.url

    def __getattr__(self, name):
        return getattr(self.client, name)

    def fetch(self, ids):
        return self.client.fetch(ids) + self.extra + [b"\x63junk"]


@pytest.mark.parametrize("peers", [THREE[0]], indirect=True)
def test_pull_takes_only_the_records_asked_for(peers):
    nodes, urls = peers
    base, parts = base_and_spends()
    feed(nodes[0], base, 0)
    feed(nodes[1], base + parts[1], 1)
    extra = [r.raw for r in parts[2] if r.raw not in {x.raw for x in parts[1]}]
    res = sync_with(nodes[0], _Liar(NodeClient(urls[1], signer=PEER), extra))
    assert res["pulled"] == len(parts[1]) and res["backlog"] == 0
    assert set(nodes[0].store.record_ids()) == set(nodes[1].store.record_ids())


def test_serve_syncs_with_its_peers_periodically(tmp_path):
    base, parts = base_and_spends()
    a, b = Node(SQLiteCTB(tmp_path / "a.sqlite")), Node(SQLiteCTB(tmp_path / "b.sqlite"))
    feed(a, base + parts[0], 0)
    feed(b, base + parts[1], 1)
    allow(b)
    srv_b = serve_in_thread(b)
    import threading
    done = threading.Event()
    seen = []

    def on_sync(peer, res):
        seen.append(res)
        done.set()
    srv_a = serve_in_thread(a, peers=[srv_b.url], interval_s=0.1, on_sync=on_sync, signer=PEER)
    try:
        assert done.wait(20)
        assert isinstance(seen[0], dict) and seen[0]["peer"] == srv_b.url
        assert a.store.state_digest() == b.store.state_digest()
    finally:
        srv_a.stop()
        srv_b.stop()


def test_a_bridge_uploads_to_an_http_node_and_gets_receipts(tmp_path):
    """The bridge's Uploader against a NodeClient: the same contract as its
    LocalPeer (pen.bridge.peers)."""
    from pen.bridge.queue import BridgeQueue
    from pen.bridge.uploader import Uploader
    from pen.samples import economy
    k, ordered, n = economy()
    node = Node(SQLiteCTB(tmp_path / "n.sqlite"), node_key=k["common-node"])
    node.submit([r.raw for r in ordered[:ordered.index(n["use"])]])
    allow(node, BRIDGE_KEY, "bridge")
    srv = serve_in_thread(node)
    try:
        q = BridgeQueue(tmp_path / "bridge.sqlite")
        q.accept(n["use"].raw)
        q.accept(n["publication"].raw)
        sent, receipts = Uploader(q, srv.url).step(NodeClient(srv.url, signer=BRIDGE_KEY))
        assert sent == 2 and len(receipts) == 1 and R.parse(receipts[0]).type == R.ACCOUNTED
        assert q.backlog(srv.url) == 0
        assert Uploader(q, srv.url).step(NodeClient(srv.url, signer=BRIDGE_KEY)) == (0, [])
    finally:
        srv.stop()


def test_three_serving_nodes_that_sync_on_their_own_converge(tmp_path):
    """The deployment: three `serve --peer` nodes, each periodically syncing
    with the other two, with conflicting records; no manual sync."""
    import time
    from .conftest import free_port
    base, parts = base_and_spends(seed=9)
    ports = [free_port() for _ in range(3)]
    urls = ["http://127.0.0.1:%d" % p for p in ports]
    nodes, servers = [], []
    keys = [Signer.from_phrase("serving-node-%d" % i) for i in range(3)]
    for i in range(3):
        node = Node(SQLiteCTB(tmp_path / ("s%d.sqlite" % i)))
        for j in range(3):
            if j != i:  # each names the other two
                allow(node, keys[j])
        feed(node, base + parts[i], seed=20 + i)
        nodes.append(node)
    try:
        for i in range(3):
            servers.append(serve_in_thread(nodes[i], port=ports[i], peers=[u for u in urls if u != urls[i]],
                                           interval_s=0.05, signer=keys[i]))
        deadline = time.time() + 30
        while len({n.status()["state_digest"] for n in nodes}) != 1:
            assert time.time() < deadline, "did not converge"
            time.sleep(0.1)
        assert conflicts(nodes[0].store)
    finally:
        for s in servers:
            s.stop()


class Direct:
    """An in-process transport to a Node (same calls as NodeClient): many
    seeds of the convergence test without sockets."""

    def __init__(self, node, name):
        self.node, self.url = node, name
        self.sent_bytes = self.received_bytes = 0

    def sync(self, msg, session=None):
        return self.node.sync_receive(session, msg)

    def fetch(self, ids):
        return self.node.fetch(ids)

    def submit(self, raws):
        return self.node.submit(raws, receipts=False)


@pytest.mark.parametrize("seed", range(12))
def test_random_arrival_orders_and_sync_orders_converge(seed):
    rnd = random.Random(seed)
    base, parts = base_and_spends(tokens=9, seed=seed)
    everything = [r for p in parts.values() for r in p]
    nodes = []
    for i in range(3):
        mine = [r for r in everything if rnd.random() < 0.5]
        node = Node(SQLiteCTB(":memory:"))
        recs = base + mine
        rnd.shuffle(recs)
        cut = rnd.randrange(len(base), len(recs) + 1)
        node.submit([r.raw for r in recs[:cut]])  # two uploads; the validator orders within each
        node.submit([r.raw for r in recs[cut:]])
        nodes.append(node)
    pairs = [(a, b) for a in range(3) for b in range(3) if a != b]
    for _ in range(3):
        rnd.shuffle(pairs)
        for a, b in pairs:
            sync_with(nodes[a], Direct(nodes[b], "peer%d" % b))
    assert len({n.store.state_digest() for n in nodes}) == 1
    # the books balance: each spent token credited once, to its effective use's account
    st = nodes[0].store
    spent = sum(t[1] for _, t in st.state_prefix(b"T") if t[5])
    assert sum(v for _, v in st.state_prefix(b"A")) == spent == sum(v for _, v in st.state_prefix(b"Q"))


class _NamesAll(_Refusing):
    """A peer that names every refused record of a batch at once (the
    node's answer since issue 10 item 12), and counts requests."""

    def __init__(self, missing, bad):
        _Refusing.__init__(self, missing, bad)
        self.requests = 0

    def submit(self, raws):
        self.requests += 1
        out = [[i, "bad-signature" if R.parse(r).id in self.bad else "unknown-token"]
               for i, r in enumerate(raws) if R.parse(r).id in self.bad | self.missing]
        if out:
            return {"ok": False, "index": out[0][0], "reason": out[0][1], "detail": "", "rejected": out}
        self.got += raws
        return {"ok": True, "verdicts": [], "receipts": []}


def test_deliver_sets_every_named_refusal_aside_in_one_round_trip():
    base, parts = base_and_spends()
    recs = base[:40]
    peer = _NamesAll(missing={recs[3].id, recs[9].id}, bad={recs[5].id, recs[30].id, recs[31].id})
    taken, deferred, refused = deliver([r.raw for r in recs], peer, batch=100)
    assert taken == 35 and deferred == 2 and set(refused) == {recs[5].id, recs[30].id, recs[31].id}
    # one refused request, one that stored the rest, one more pass for the two deferred (still lacking)
    assert peer.requests == 3
