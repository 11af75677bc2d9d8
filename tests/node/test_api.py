"""The node's HTTP API: every endpoint, the one validator on submit,
idempotence, bounded and malformed bodies refused with a reason."""
import json
import urllib.request

import pytest

from pen.node.client import NodeClient
from pen.node.core import Node, NodeError, MAX_BATCH_RECORDS
from pen.node.server import serve_in_thread, MAX_BATCH_BYTES
from pen.samples import economy
from pen.store import SQLiteCTB
from pen_protocol import cbor, ctb, records as R
from .world import PEER, allow, raw_request


@pytest.fixture
def api(tmp_path):
    k, ordered, n = economy()
    store = SQLiteCTB(tmp_path / "n.sqlite", clock=lambda: 1795000000)
    node = Node(store, node_key=k["common-node"], clock=lambda: 1795000000)
    allow(node)
    srv = serve_in_thread(node)
    yield k, ordered, n, node, NodeClient(srv.url, signer=PEER)
    srv.stop()
    store.close()


def post(url, body, ctype="application/cbor"):
    return raw_request(url, body, signer=PEER, ctype=ctype)


def test_submit_validates_stores_and_returns_receipts(api):
    k, ordered, n, node, c = api
    upto_use = ordered[:ordered.index(n["use"]) + 1]
    res = c.submit([r.raw for r in upto_use])
    assert res["ok"] and [v["code"] for v in res["verdicts"]] == [ctb.ACCEPTED] * len(upto_use)
    # the node signed an ACCOUNTED receipt for the payment, with its node key
    assert len(res["receipts"]) == 1
    receipt = R.parse(res["receipts"][0])
    assert receipt.type == R.ACCOUNTED and receipt.fields[1] == n["use"].id
    assert c.token(n["issue"].fields[0])["state"] == ctb.ACCOUNTED


def test_resubmitting_a_batch_is_a_no_op_success(api):
    k, ordered, n, node, c = api
    raws = [r.raw for r in ordered]
    c.submit(raws)
    before = c.status()
    res = c.submit(raws)
    assert res["ok"] and {v["code"] for v in res["verdicts"]} == {ctb.DUPLICATE} and res["receipts"] == []
    after = c.status()
    assert (after["records"], after["state_digest"]) == (before["records"], before["state_digest"])


def test_rejected_batch_names_the_record_and_stores_nothing(api):
    k, ordered, n, node, c = api
    c.submit([r.raw for r in ordered[:5]])
    before = c.status()["state_digest"]
    forged = bytearray(ordered[5].raw)
    forged[-1] ^= 1
    res = c.submit([ordered[1].raw, bytes(forged)])
    assert res == {"ok": False, "index": 1, "reason": "bad-signature", "detail": "not signed by the first founder",
                   "rejected": [[1, "bad-signature"]]}
    assert c.status()["state_digest"] == before and c.status()["records"] == 5


def test_malformed_submit_body_is_400_with_reason(api):
    k, ordered, n, node, c = api
    url = c.url + "/v1/records"
    status, body = post(url, b"\xff")
    assert status == 400
    assert body["reason"] == "malformed" and "CBOR" in body["detail"]
    status, body = post(url, cbor.dumps({1: 2}))
    assert (status, body["reason"]) == (400, "malformed")
    status, body = post(url, cbor.dumps([b"x", 3]))
    assert (status, body["reason"]) == (400, "malformed")


def test_a_non_record_in_a_batch_is_rejected_with_its_reason(api):
    k, ordered, n, node, c = api
    res = c.submit([ordered[0].raw, b"\x63junk"])
    assert res["ok"] is False and res["index"] == 1 and res["reason"] == "unknown-type"
    assert c.status()["records"] == 0


def test_too_many_records_is_413(api):
    k, ordered, n, node, c = api
    status, body = post(c.url + "/v1/records", cbor.dumps([ordered[0].raw] * (MAX_BATCH_RECORDS + 1)))
    assert (status, body["reason"]) == (413, "too-many-records")


def test_oversized_body_is_413(api):
    k, ordered, n, node, c = api
    status, body = post(c.url + "/v1/records", b"\x00" * (MAX_BATCH_BYTES + 1))
    assert (status, body["reason"]) == (413, "too-large")


def test_token_votation_publication_and_account_views(api):
    k, ordered, n, node, c = api
    c.submit([r.raw for r in ordered])
    tok = c.token(n["issue"].fields[0])
    assert tok["state"] == ctb.ACCOUNTED and tok["value"] == 30000
    assert len(tok["uses"]) == 2 and sum(u["effective"] for u in tok["uses"]) == 1
    assert [h["type"] for h in tok["history"]][:2] == ["issue", "set-user"]
    v = c.votation(n["votation-open"].fields[0])
    assert v["subject"] == "approve" and v["closed"]["passed"] is True and v["closed"]["yes"] == 3
    assert [x["ref"] for x in c.votations()] == [n["votation-open"].fields[0].hex()]
    pubs = c.publications()
    assert len(pubs) == 1 and pubs[0]["kind"] == "price" and pubs[0]["content"] == {"1": 150, "2": "credits per valve"}
    assert c.publications("limit") == []
    effective = [u for u in tok["uses"] if u["effective"]][0]
    acct = effective["account"]
    assert c.account(acct) == {"account": acct, "credits": 30000}
    by_prefix = c.accounts(acct[:3])
    assert by_prefix["total"] == 30000 and by_prefix["accounts"] == {acct: 30000}
    assert c.accounts()["total"] == 30000


def test_views_refuse_bad_and_unknown_names(api):
    k, ordered, n, node, c = api
    for call, reason, status in ((lambda: c.token(b"\x00" * 8), "unknown-token", 404),
                                 (lambda: c.votation(b"\x00" * 8), "unknown-votation", 404),
                                 (lambda: c._json("/v1/tokens/zz"), "bad-ref", 400),
                                 (lambda: c.account("4x"), "bad-account", 400),
                                 (lambda: c.accounts("4x"), "bad-account", 400),
                                 (lambda: c.publications("nope"), "bad-kind", 400),
                                 (lambda: c.record(b"\x00" * 16), "unknown-record", 404)):
        with pytest.raises(NodeError) as e:
            call()
        assert (e.value.reason, e.value.status) == (reason, status)


def test_fetch_returns_held_records_in_order_and_refuses_bad_ids(api):
    k, ordered, n, node, c = api
    c.submit([r.raw for r in ordered])
    want = [n["vote"].id, b"\x00" * 16, n["use"].id]
    assert c.fetch(want) == [n["vote"].raw, n["use"].raw]
    assert c.record(n["use"].id) == n["use"].raw
    status, body = post(c.url + "/v1/records/fetch", cbor.dumps([b"short"]))
    assert (status, body["reason"]) == (400, "malformed")


def test_sync_endpoint_refuses_garbage_and_unknown_sessions(api):
    k, ordered, n, node, c = api
    status, body = post(c.url + "/v1/sync", b"\x00")
    assert (status, body["reason"]) == (400, "sync-malformed")
    status, body = post(c.url + "/v1/sync/feedfeedfeedfeed", cbor.dumps([3, 0, b""]))
    assert (status, body["reason"]) == (404, "unknown-session")
    assert node.sessions == {}


def test_status_reports_records_digest_and_peers(api):
    k, ordered, n, node, c = api
    c.submit([r.raw for r in ordered])
    st = c.status()
    assert st["records"] == node.store.count() and st["state_digest"] == node.store.state_digest()
    assert st["database"] == "sqlite" and st["peers"] == {} and st["economy"] == "Valley economy"


def _hello(n_ids):
    import os
    from pen.sync import SetIndex, Reconciler
    return Reconciler(SetIndex.from_ids([os.urandom(16) for _ in range(n_ids)]), initiator=True).start()


def test_sync_sessions_are_bounded_and_expire(tmp_path):
    from pen.node.core import MAX_SESSIONS, SESSION_TTL_S
    _, ordered, _ = economy()
    now = [1795000000.0]
    node = Node(SQLiteCTB(tmp_path / "n.sqlite"), clock=lambda: now[0])
    node.submit([r.raw for r in ordered])
    for _ in range(MAX_SESSIONS):
        reply, session = node.sync_receive(None, _hello(50))  # a real difference: the exchange goes on
        assert session is not None
    with pytest.raises(NodeError) as e:
        node.sync_receive(None, _hello(50))
    assert (e.value.reason, e.value.status) == ("busy", 503)
    now[0] += SESSION_TTL_S + 1  # idle sessions are dropped
    reply, session = node.sync_receive(None, _hello(50))
    assert session is not None and len(node.sessions) == 1


def test_initiator_records_a_peer_that_answers_garbage(tmp_path):
    from pen.node.sync import sync_with
    from pen.sync import SyncError

    class Garbage:
        url = "http://garbage.invalid"
        sent_bytes = received_bytes = 0

        def sync(self, msg, session=None):
            return b"\x83\x01\x02\x03", None
    node = Node(SQLiteCTB(tmp_path / "n.sqlite"))
    with pytest.raises(SyncError) as e:
        sync_with(node, Garbage())
    assert e.value.reason == "malformed"
    assert node.peers()["http://garbage.invalid"]["last_error"].startswith("SyncError: malformed")


def _usable_node(tmp_path, count):
    """A node with count usable tokens of carlos, and carlos's USE of each."""
    from pen import build as B
    from pen.keys import Signer
    k, ordered, n = economy()
    tmp_path.mkdir(parents=True, exist_ok=True)
    node = Node(SQLiteCTB(tmp_path / "g.sqlite"), node_key=k["common-node"], clock=lambda: 1795000000)
    node.submit([r.raw for r in ordered[:ordered.index(n["use"])]])
    carlos = Signer.from_phrase("carlos")
    uses = []
    for i in range(count):
        t = B.issue(k["formosa-plumbing"], 500 + i, 10, n["proposal"].fields[0])
        node.submit([t.raw, B.set_user(k["formosa-plumbing"], t.fields[0], carlos).raw])
        uses.append(B.use(carlos, t.fields[0], "50100000", "50100000"))
    return node, uses


def test_a_group_commit_answers_each_batch_as_if_alone(tmp_path):
    node, uses = _usable_node(tmp_path, 3)
    res = node.submit_group([[uses[0].raw], [uses[1].raw, uses[2].raw]])
    assert [r["ok"] for r in res] == [True, True]
    assert [R.parse(x).fields[1] for x in res[0]["receipts"]] == [uses[0].id]
    assert sorted(R.parse(x).fields[1] for x in res[1]["receipts"]) == sorted([uses[1].id, uses[2].id])
    # two clients uploading one record at once: as in turn, the second is a duplicate, one receipt in all
    node2, more = _usable_node(tmp_path / "two", 1)
    res = node2.submit_group([[more[0].raw], [more[0].raw]])
    assert [r["verdicts"][0]["code"] for r in res] == [ctb.ACCEPTED, ctb.DUPLICATE]
    assert [len(r["receipts"]) for r in res] == [1, 0]


def test_one_bad_record_in_a_group_refuses_only_its_own_batch(tmp_path):
    node, uses = _usable_node(tmp_path, 2)
    forged = bytearray(uses[1].raw)
    forged[-1] ^= 1
    before = node.store.count()
    res = node.submit_group([[uses[0].raw], [bytes(forged)], [b"\x63junk"]])
    assert res[0]["ok"] and len(res[0]["receipts"]) == 1
    assert (res[1]["ok"], res[1]["reason"], res[1]["index"]) == (False, "bad-signature", 0)
    assert (res[2]["ok"], res[2]["reason"]) == (False, "unknown-type")
    assert node.store.count() == before + 2  # the good USE and its receipt
    with pytest.raises(NodeError) as e:
        node.submit_group([[uses[1].raw]] * (MAX_BATCH_RECORDS + 1))
    assert e.value.reason == "too-many-records"


def test_the_sync_index_sees_every_single_submit_it_has_not_yet_indexed(tmp_path):
    node, uses = _usable_node(tmp_path, 3)
    assert node.index_lag > 3
    for u in uses:
        node.submit([u.raw])
    assert node._unindexed  # the index work waits ...
    assert len(node.index) == node.store.count() and all(u.id in node.index for u in uses)  # ... not a sync


def test_a_client_gone_mid_upload_is_one_log_line_not_a_traceback(tmp_path, capfd):
    import socket
    import time
    from pen.peering import sign_request
    node = Node(SQLiteCTB(tmp_path / "d.sqlite"))
    allow(node)
    lines = []
    srv = serve_in_thread(node, log=lines.append)
    try:
        host = srv.url.split("//")[1]
        body = b"\x00" * 100000
        head = "".join("%s: %s\r\n" % kv for kv in sign_request(PEER, "POST", host, "/v1/records", body,
                                                                 time.time()).items())
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(("POST /v1/records HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n%s\r\n" % (
            host, len(body), head)).encode() + body[:5000])
        time.sleep(0.2)
        s.close()
        deadline = time.time() + 5
        while not lines and time.time() < deadline:
            time.sleep(0.05)
    finally:
        srv.stop()
    assert len(lines) == 1 and lines[0].startswith("client 127.0.0.1 went away during POST /v1/records")
    assert "Traceback" not in capfd.readouterr().err
    assert node.store.count() == 0
