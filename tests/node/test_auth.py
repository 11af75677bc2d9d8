"""Who may do what at a CTB node (issue 10 item 13): writes and sync only by
allowed peer keys, signed requests that cannot be replayed, forged or kept
for later, per-peer rate limits, and anonymous clients reading only what is
published. Each test asserts the exact refusal and that nothing changed."""
import pytest

from pen import build as B
from pen.keys import Signer
from pen.node.auth import (BRIDGE, NODE, PUBLIC, Gate, Peer, TokenBucket, allow_peer, load_peers, remove_peer)
from pen.node.client import NodeClient
from pen.node.core import Node
from pen.node.server import serve_in_thread
from pen.node.sync import sync_with
from pen.peering import (NONCE_HEADER, REPLAY_WINDOW_S, SIG_HEADER, TIME_HEADER, NodeError, request_message,
                         sign_request)
from pen.samples import economy
from pen.store import SQLiteCTB
from pen_protocol import cbor

from .world import BRIDGE_KEY, PEER, allow, base_and_spends, raw_request

T = 1795000000
MALLORY = Signer.from_phrase("mallory")
HOST = "node.example:8470"


# -- the Gate, sans-IO, on a virtual clock -------------------------------------

def gate(rate=1e6, burst=1e6, role=NODE, signer=PEER):
    return Gate(lambda: {signer.public_key: Peer(signer.public_key, "p", role, rate, burst)})


def signed(signer=PEER, method="POST", path="/v1/records", body=b"x", when=T, nonce=b"\x01" * 16):
    return sign_request(signer, method, HOST, path, body, when, nonce)


def refusal(fn):
    with pytest.raises(NodeError) as e:
        fn()
    return e.value.reason, e.value.status


def test_a_signed_request_from_an_allowed_key_passes():
    g = gate()
    assert g.check_signed(BRIDGE, "POST", HOST, "/v1/records", signed(), b"x", T).key == PEER.public_key


def test_a_replayed_request_is_refused_for_the_whole_window():
    g = gate()
    h = signed()
    g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T)
    for now in (T, T + 1, T + REPLAY_WINDOW_S):
        assert refusal(lambda: g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", now)) == (
            "replayed", 401)
    # after the window it is stale rather than replayed: refused either way
    assert refusal(lambda: g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T + REPLAY_WINDOW_S + 1)
                   ) == ("stale-request", 401)


@pytest.mark.parametrize("when", [T - REPLAY_WINDOW_S - 1, T + REPLAY_WINDOW_S + 1])
def test_an_expired_or_future_request_is_refused(when):
    g = gate()
    h = signed(when=when)
    assert refusal(lambda: g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T)) == (
        "stale-request", 401)


@pytest.mark.parametrize("part", ["body", "path", "method", "host", "time", "nonce", "signature"])
def test_changing_any_signed_part_breaks_the_signature(part):
    g = gate()
    h = signed()
    args = {"method": "POST", "host": HOST, "path": "/v1/records", "body": b"x"}
    if part == "body":
        args["body"] = b"y"
    elif part == "path":
        args["path"] = "/v1/sync"
    elif part == "method":
        args["method"] = "PUT"
    elif part == "host":
        args["host"] = "other.example:8470"
    elif part == "time":
        h[TIME_HEADER] = str(T + 1)
    elif part == "nonce":
        h[NONCE_HEADER] = "02" * 16
    else:
        sig = bytearray.fromhex(h[SIG_HEADER])
        sig[5] ^= 1
        h[SIG_HEADER] = sig.hex()
    assert refusal(lambda: g.check_signed(BRIDGE, args["method"], args["host"], args["path"], h, args["body"], T)
                   ) == ("bad-signature", 401)


def test_a_key_not_on_the_list_is_refused_before_any_signature_check():
    g = gate()
    assert refusal(lambda: g.check_signed(BRIDGE, "POST", HOST, "/v1/records", signed(MALLORY), b"x", T)) == (
        "unknown-peer", 403)
    # and mallory signing with a listed peer's public key name cannot sign for it
    h = signed(MALLORY)
    h["Pen-Key"] = PEER.public_key.hex()
    assert refusal(lambda: g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T)) == (
        "bad-signature", 401)


@pytest.mark.parametrize("bad", [{}, {"Pen-Key": "zz"}, {"Pen-Time": "soon"}, {"Pen-Nonce": "00"}])
def test_malformed_auth_headers_are_refused(bad):
    h = dict(signed(), **bad) if bad else {"Pen-Key": PEER.public_key.hex()}
    assert refusal(lambda: gate().check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T)) == (
        "bad-auth", 401)


def test_a_bridge_key_may_upload_but_not_sync():
    g = gate(role=BRIDGE, signer=BRIDGE_KEY)
    g.check_signed(BRIDGE, "POST", HOST, "/v1/records", signed(BRIDGE_KEY), b"x", T)
    h = signed(BRIDGE_KEY, path="/v1/sync", nonce=b"\x02" * 16)
    assert refusal(lambda: g.check_signed(NODE, "POST", HOST, "/v1/sync", h, b"x", T)) == ("forbidden", 403)


def test_the_rate_limit_holds_and_refills_with_the_clock():
    g = gate(rate=2, burst=3)
    n = [0]

    def call(now):
        n[0] += 1
        h = signed(nonce=n[0].to_bytes(16, "big"), when=now)
        return g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", now)
    for _ in range(3):
        call(T)
    assert refusal(lambda: call(T)) == ("rate-limited", 429)
    assert refusal(lambda: call(T + 0.4)) == ("rate-limited", 429)  # 0.8 of a token: not yet
    call(T + 0.5)  # 2 a second: one more after half a second
    assert refusal(lambda: call(T + 0.5)) == ("rate-limited", 429)
    assert g.refused["rate-limited"] == 3


def test_a_rate_limited_request_may_be_sent_again():
    """A refused request did nothing, so its nonce is not spent."""
    g = gate(rate=1, burst=1)
    g.check_signed(BRIDGE, "POST", HOST, "/v1/records", signed(nonce=b"\x09" * 16), b"x", T)
    h = signed()
    assert refusal(lambda: g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T)) == ("rate-limited", 429)
    g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T + 1)


def test_anonymous_clients_read_only_public_routes_within_their_own_limit():
    g = Gate(dict, anon_rate=1, anon_burst=2)
    for need in (BRIDGE, NODE):
        assert refusal(lambda: g.check_anonymous(need, "10.0.0.1", T)) == ("unauthenticated", 401)
    g.check_anonymous(PUBLIC, "10.0.0.1", T)
    g.check_anonymous(PUBLIC, "10.0.0.1", T)
    assert refusal(lambda: g.check_anonymous(PUBLIC, "10.0.0.1", T)) == ("rate-limited", 429)
    g.check_anonymous(PUBLIC, "10.0.0.2", T)  # another address has its own bucket


def test_nonces_are_forgotten_once_out_of_the_window():
    g = gate()
    for i in range(50):
        g.check_signed(BRIDGE, "POST", HOST, "/v1/records", signed(nonce=i.to_bytes(16, "big")), b"x", T)
    assert len(g._nonces) == 50
    h = signed(nonce=b"\xff" * 16, when=T + 3 * REPLAY_WINDOW_S)
    g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T + 3 * REPLAY_WINDOW_S)
    assert len(g._nonces) == 1


def test_token_bucket_never_holds_more_than_its_burst():
    b = TokenBucket(10, 5, T)
    assert b.full(T + 1000) and b.tokens == 5


def test_the_signed_message_is_domain_separated_and_nul_safe():
    m = request_message("POST", HOST, "/v1/records", T, b"\x00" * 16, b"")
    assert m.startswith(b"pen/1/node-request\x00")
    with pytest.raises(ValueError):
        request_message("POST", HOST, "/v1/records\x00x", T, b"\x00" * 16, b"")


def test_the_allow_list_lives_in_the_store(tmp_path):
    store = SQLiteCTB(tmp_path / "n.sqlite")
    allow_peer(store, PEER.public_key, "east", NODE, 50, 80)
    allow_peer(store, BRIDGE_KEY.public_key, "village", BRIDGE)
    peers = load_peers(store)
    assert {(p.name, p.role, p.rate, p.burst) for p in peers.values()} == {("east", NODE, 50, 80),
                                                                          ("village", BRIDGE, 20, 100)}
    assert remove_peer(store, PEER.public_key) and not remove_peer(store, PEER.public_key)
    assert list(load_peers(store)) == [BRIDGE_KEY.public_key]
    with pytest.raises(ValueError):
        allow_peer(store, MALLORY.public_key, "x", "admin")
    with pytest.raises(ValueError):
        allow_peer(store, MALLORY.public_key, "x", NODE, 0, 1)


# -- over HTTP ---------------------------------------------------------------------

@pytest.fixture
def served(tmp_path):
    k, ordered, n = economy()
    node = Node(SQLiteCTB(tmp_path / "n.sqlite", clock=lambda: T), node_key=k["common-node"], clock=lambda: T)
    node.submit([r.raw for r in ordered])
    allow(node)
    allow(node, BRIDGE_KEY, BRIDGE)
    srv = serve_in_thread(node)
    yield node, srv.url, n
    srv.stop()
    node.store.close()


def test_the_anonymous_thousand_council_post_is_refused_and_stores_nothing(served):
    """The attack of issue 10 item 13: 1,000 self-signed COUNCIL records in one anonymous POST."""
    node, url, n = served
    before = (node.store.count(), node.store.state_digest())
    squatters = [B.council(Signer.from_phrase("squat-%d" % i), "council %d" % i, "consumption").raw
                 for i in range(1000)]
    status, body = raw_request(url + "/v1/records", cbor.dumps(squatters))
    assert (status, body["reason"]) == (401, "unauthenticated")
    # signed by a key the node does not know: refused too
    status, body = raw_request(url + "/v1/records", cbor.dumps(squatters), signer=MALLORY)
    assert (status, body["reason"]) == (403, "unknown-peer")
    assert (node.store.count(), node.store.state_digest()) == before


@pytest.mark.parametrize("path,method", [("/v1/records/fetch", "POST"), ("/v1/sync", "POST"),
                                         ("/v1/tokens/%s", "GET"), ("/v1/records/%s", "GET"),
                                         ("/v1/votations", "GET")])
def test_anonymous_reads_of_the_ctb_are_refused(served, path, method):
    node, url, n = served
    if "%s" in path:
        path = path % (n["issue"].fields[0].hex() if "tokens" in path else n["use"].id.hex())
    body = cbor.dumps([n["use"].id]) if method == "POST" else None
    status, reply = raw_request(url + path, body, method=method)
    assert (status, reply["reason"]) == (401, "unauthenticated")


def test_public_reads_need_no_key(served):
    node, url, n = served
    c = NodeClient(url)
    assert c.publications()[0]["kind"] == "price"
    assert c.accounts()["total"] > 0
    st = c.status()
    assert set(st) == {"records", "state_digest", "economy", "schema"}  # no peers, errors or sessions
    assert st["state_digest"] == node.store.state_digest()


def test_a_replayed_http_request_is_refused(served):
    import time
    node, url, n = served
    body = cbor.dumps([n["use"].id])
    h = sign_request(PEER, "POST", url.split("//")[1], "/v1/records/fetch", body, time.time())
    assert raw_request(url + "/v1/records/fetch", body, headers=h)[0] == 200
    status, reply = raw_request(url + "/v1/records/fetch", body, headers=h)
    assert (status, reply["reason"]) == (401, "replayed")


def test_an_expired_http_request_is_refused(served):
    import time
    node, url, n = served
    status, reply = raw_request(url + "/v1/votations", None, "GET", PEER, when=time.time() - REPLAY_WINDOW_S - 5)
    assert (status, reply["reason"]) == (401, "stale-request")


def test_a_bridge_key_uploads_but_may_not_pull_the_ctb(served):
    node, url, n = served
    c = NodeClient(url, signer=BRIDGE_KEY)
    assert c.submit([n["use"].raw])["ok"]
    assert c.token(n["issue"].fields[0])["state"] == "ACCOUNTED"
    for call in (lambda: c.fetch([n["use"].id]), lambda: c.sync(b"\x00"), lambda: c.votations()):
        with pytest.raises(NodeError) as e:
            call()
        assert (e.value.reason, e.value.status) == ("forbidden", 403)


def test_the_rate_limit_is_enforced_over_http(tmp_path):
    node = Node(SQLiteCTB(tmp_path / "n.sqlite"))
    allow(node, PEER, NODE, rate=0.001, burst=3)
    srv = serve_in_thread(node)
    try:
        waits = []
        c = NodeClient(srv.url, signer=PEER, sleep=waits.append)
        for _ in range(3):
            c.votations()
        with pytest.raises(NodeError) as e:
            c.votations()
        assert (e.value.reason, e.value.status) == ("rate-limited", 429)
        assert waits == [0.25 * 2 ** i for i in range(7)]  # tried 8 times, then gave up
    finally:
        srv.stop()


def test_peers_named_on_both_sides_sync_and_a_session_is_theirs_alone(tmp_path):
    base, parts = base_and_spends()
    a, b = Node(SQLiteCTB(tmp_path / "a.sqlite")), Node(SQLiteCTB(tmp_path / "b.sqlite"))
    a.submit([r.raw for r in base + parts[0]])
    b.submit([r.raw for r in base + parts[1]])
    ka, kb = Signer.from_phrase("node-a"), Signer.from_phrase("node-b")
    allow(b, ka)
    allow(b, kb)  # b also knows another peer (itself, here) that will try to steal a's session
    srv = serve_in_thread(b)
    try:
        # a session opened by ka cannot be continued by kb
        from pen.sync import Reconciler, SetIndex
        msg = Reconciler(SetIndex.from_ids(a.store.record_ids()), initiator=True).start()
        _, session = NodeClient(srv.url, signer=ka).sync(msg)
        assert session is not None
        with pytest.raises(NodeError) as e:
            NodeClient(srv.url, signer=kb).sync(b"\x00", session)
        assert (e.value.reason, e.value.status) == ("unknown-session", 404)
        res = sync_with(a, NodeClient(srv.url, signer=ka))
        assert res["refused"] == 0 and a.store.state_digest() == b.store.state_digest()
        # a node that does not name this key refuses it
        with pytest.raises(NodeError) as e:
            sync_with(a, NodeClient(srv.url, signer=MALLORY))
        assert e.value.reason == "unknown-peer"
    finally:
        srv.stop()


def test_the_nonce_memory_is_capped_and_the_node_says_busy_rather_than_forget(monkeypatch):
    import pen.node.auth as A
    monkeypatch.setattr(A, "MAX_NONCES", 3)
    g = gate()
    for i in range(3):
        g.check_signed(BRIDGE, "POST", HOST, "/v1/records", signed(nonce=i.to_bytes(16, "big")), b"x", T)
    h = signed(nonce=b"\x77" * 16)
    assert refusal(lambda: g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T)) == ("busy", 503)
    # once the window has passed, the old nonces are forgotten and requests go again
    h = signed(nonce=b"\x78" * 16, when=T + 2 * REPLAY_WINDOW_S + 1)
    g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T + 2 * REPLAY_WINDOW_S + 1)


def test_anonymous_addresses_are_capped_idle_ones_forgotten_first(monkeypatch):
    import pen.node.auth as A
    monkeypatch.setattr(A, "MAX_ANON_ADDRS", 2)
    g = Gate(dict, anon_rate=1, anon_burst=2)
    g.check_anonymous(PUBLIC, "a", T)
    g.check_anonymous(PUBLIC, "b", T)
    assert refusal(lambda: g.check_anonymous(PUBLIC, "c", T)) == ("busy", 503)  # a and b still busy
    g.check_anonymous(PUBLIC, "c", T + 2)  # a and b refilled: forgotten
    assert set(g._anon) == {"c"}


def test_a_peer_added_while_the_node_runs_is_taken_within_the_reload_time(tmp_path):
    import pen.node.auth as A
    store = SQLiteCTB(tmp_path / "n.sqlite")
    g = Gate(lambda: load_peers(store))
    h = signed(MALLORY)
    assert refusal(lambda: g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T)) == ("unknown-peer", 403)
    allow_peer(store, MALLORY.public_key, "m", BRIDGE)
    assert refusal(lambda: g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T + 1)) == (
        "unknown-peer", 403)  # the list is read again every RELOAD_S
    h = signed(MALLORY, when=T + A.RELOAD_S)
    assert g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T + A.RELOAD_S).name == "m"
    remove_peer(store, MALLORY.public_key)
    h = signed(MALLORY, when=T + 2 * A.RELOAD_S, nonce=b"\x05" * 16)
    assert refusal(lambda: g.check_signed(BRIDGE, "POST", HOST, "/v1/records", h, b"x", T + 2 * A.RELOAD_S)) == (
        "unknown-peer", 403)


def test_a_rate_limited_client_waits_and_tries_again(tmp_path):
    node = Node(SQLiteCTB(tmp_path / "n.sqlite"))
    allow(node, PEER, NODE, rate=1, burst=1)
    now = [float(T)]
    srv = serve_in_thread(node, clock=lambda: now[0])
    waits = []

    def sleep(s):  # the node's clock moves while the client waits
        waits.append(s)
        now[0] += s
    try:
        c = NodeClient(srv.url, signer=PEER, clock=lambda: now[0], sleep=sleep)
        c.votations()
        c.votations()  # the bucket is empty: refused until a whole token is back, 1 s later
        assert waits == [0.25, 0.5, 1.0]
    finally:
        srv.stop()


def test_a_bridge_gets_a_lost_batch_s_receipts_in_one_request(tmp_path):
    """A bridge killed after the node took 300 payments uploads them again:
    300 duplicates, whose receipts come back in one request, well inside a
    bridge's default bucket (before, one token request each: 300 requests,
    refused past the burst)."""
    from pen.bridge.peers import HttpPeer
    from pen.bridge.queue import BridgeQueue
    from pen.bridge.uploader import Uploader
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
    from village_kit import payments
    k, ordered, n = economy()
    node = Node(SQLiteCTB(tmp_path / "n.sqlite"), node_key=k["common-node"], clock=lambda: T)
    node.submit([r.raw for r in ordered[:-3]])
    issues, users, uses = payments(300)
    node.submit([r.raw for r in issues + users])
    allow_peer(node.store, BRIDGE_KEY.public_key, "village", BRIDGE)  # default bridge rate limit
    lost = node.submit([u.raw for u in uses])["receipts"]
    srv = serve_in_thread(node)
    try:
        q = BridgeQueue(tmp_path / "bridge.sqlite")
        for u in uses:
            q.accept(u.raw)
        peer = HttpPeer(srv.url, signer=BRIDGE_KEY)
        sent, receipts = Uploader(q, "ctb").step(peer)
        assert sent == 300 and sorted(receipts) == sorted(lost)
        assert peer.client.requests == 2  # the upload and one receipts request, no per-token reads
    finally:
        srv.stop()


def test_receipts_requests_are_bounded_and_checked(served):
    node, url, n = served
    c = NodeClient(url, signer=BRIDGE_KEY)
    assert c.receipts([(n["issue"].fields[0], n["use"].id)]) == node.receipts([(n["issue"].fields[0], n["use"].id)])
    for body in (cbor.dumps([[b"short", n["use"].id]]), cbor.dumps({1: 2}), b"\xff"):
        status, reply = raw_request(url + "/v1/receipts", body, signer=BRIDGE_KEY)
        assert (status, reply["reason"]) == (400, "malformed")
    status, reply = raw_request(url + "/v1/receipts", cbor.dumps([[n["issue"].fields[0], n["use"].id]]))
    assert (status, reply["reason"]) == (401, "unauthenticated")
    with pytest.raises(NodeError) as e:
        node.receipts([(b"\x00" * 8, b"\x00" * 16)] * 501)
    assert e.value.reason == "too-many-ids"
