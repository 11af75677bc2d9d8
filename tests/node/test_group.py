"""One commit per upload group: a batch's receipts go in its own
transaction (store.submit_follow), a group with refused batches commits the
others together, and nothing accepted is lost or half-stored when a commit
fails."""
import sqlite3

import pytest

from pen import build as B
from pen.keys import Signer
from pen.store import BatchRejected
from pen_protocol import ctb, records as R, sign
from .test_api import _usable_node


def count_commits(monkeypatch, store):
    n = [0]
    real = store._commit

    def commit():
        n[0] += 1
        real()
    monkeypatch.setattr(store, "_commit", commit)
    return n


def forged(rec):
    raw = bytearray(rec.raw)
    raw[-1] ^= 1
    return bytes(raw)


def test_a_batch_and_its_receipts_are_one_commit(tmp_path, monkeypatch):
    node, uses = _usable_node(tmp_path, 2)
    commits = count_commits(monkeypatch, node.store)
    before = node.store.count()
    res = node.submit([u.raw for u in uses])
    assert res["ok"] and len(res["receipts"]) == 2 and commits[0] == 1
    assert node.store.count() == before + 4
    assert {R.parse(r).fields[1] for r in res["receipts"]} == {u.id for u in uses}
    assert all(node.store.get_record(R.parse(r).id) == r for r in res["receipts"])


def test_a_failed_commit_keeps_neither_the_batch_nor_its_receipts(tmp_path, monkeypatch):
    node, uses = _usable_node(tmp_path, 1)
    before, digest = node.store.count(), node.store.state_digest()
    real = node.store._commit

    def disk_full():
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(node.store, "_commit", disk_full)
    with pytest.raises(sqlite3.OperationalError):
        node.submit([uses[0].raw])
    monkeypatch.setattr(node.store, "_commit", real)
    assert node.store.count() == before and node.store.state_digest() == digest
    assert uses[0].id not in node.index
    res = node.submit([uses[0].raw])  # the bridge sends it again: taken, with its receipt
    assert res["ok"] and res["verdicts"][0]["code"] == ctb.ACCEPTED and len(res["receipts"]) == 1
    assert node.store.count() == before + 2 and uses[0].id in node.index


def test_a_refused_follow_up_is_dropped_and_the_batch_is_stored_without_it(tmp_path, monkeypatch):
    node, uses = _usable_node(tmp_path, 1)
    k = Signer.from_phrase("not-a-ctb-node")
    commits = count_commits(monkeypatch, node.store)
    before = node.store.count()

    def follow(state, verdicts):  # a receipt from a key that is no CTB node of the economy
        assert state.get(b"T" + uses[0].fields[0])[5][0][0] == uses[0].id  # reads the batch's outcome
        return [B.accounted(k, uses[0].fields[0], uses[0].id, 1795000000)]
    verdicts, more = node.store.submit_follow([uses[0].raw], follow, k)
    assert [v.code for v in verdicts] == [ctb.ACCEPTED] and more == [] and commits[0] == 1
    refused = node.status()["receipts_refused"]  # the operator sees why no receipt came
    assert refused["count"] == 1 and "record 0 rejected: " in refused["last"]
    assert node.store.count() == before + 1 and node.store.get_record(uses[0].id) == uses[0].raw
    assert ctb.token_state(node.store.get(b"T" + uses[0].fields[0])) == ctb.USED
    # the state cache kept nothing of the dropped receipt: the node's own receipt goes in after
    res = node.submit([uses[0].raw])
    assert res["verdicts"][0]["code"] == ctb.DUPLICATE
    assert node.receipts([(uses[0].fields[0], uses[0].id)]) == []


def test_the_nodes_own_receipts_are_checked_by_signing_again_not_by_a_verify(tmp_path):
    node, uses = _usable_node(tmp_path, 1)
    seen = []
    real = sign._default_verifier()
    sign.set_verifier(lambda pk, m, s: seen.append(bytes(pk)) or real(pk, m, s))
    try:
        res = node.submit([uses[0].raw])
    finally:
        sign.set_verifier(None)
    assert res["ok"] and len(res["receipts"]) == 1
    assert node.node_key.public_key not in seen and len(seen) == 1  # the USE's signature only


def test_a_receipt_in_the_node_keys_name_that_it_did_not_sign_is_verified_and_refused(tmp_path):
    from pen.store import _made_here
    node, uses = _usable_node(tmp_path, 1)
    mine = node.node_key
    good = B.accounted(mine, uses[0].fields[0], uses[0].id, 1795000000)
    check = _made_here(mine)
    assert check(mine.public_key, good.signed_message(), good.sig)
    bad_sig = bytes(64)
    assert not check(mine.public_key, good.signed_message(), bad_sig)
    assert not check(mine.public_key, good.signed_message() + b"x", good.sig)
    # in a batch from outside, a forged receipt naming the node's key is refused as any other
    node.submit([uses[0].raw], receipts=False)
    before = node.store.count()
    res = node.submit([forged(good)])
    assert (res["ok"], res["reason"]) == (False, "bad-signature") and node.store.count() == before


def test_another_valid_signature_by_the_node_key_is_still_accepted():
    """Signing again only recognises this process's deterministic signature;
    a different valid one by the same key (another implementation's nonce)
    goes to the verifier and passes, as on every other node."""
    from nacl.bindings import crypto_sign_open  # noqa: F401  (libsodium present)
    from pen.store import _made_here
    k = Signer.from_phrase("node")
    msg = b"pen/1/ACCOUNTED\x00" + bytes(40)
    ours = k(msg)
    other = _second_signature(k, msg)
    assert other != ours and sign.verify(k.public_key, msg, other)
    assert _made_here(k)(k.public_key, msg, other)


def _second_signature(k, msg):
    """A valid Ed25519 signature of msg by k with the nonce r = 1 instead of
    RFC 8032's: R = the base point, S = 1 + H(R || A || M) a mod L."""
    import hashlib
    from pen_protocol.ed25519 import L
    h = hashlib.sha512(k.seed).digest()
    a = (int.from_bytes(h[:32], "little") & ((1 << 254) - 8)) | (1 << 254)
    big_r = bytes.fromhex("58" + "66" * 31)  # the base point, encoded (RFC 8032 5.1.2)
    kk = int.from_bytes(hashlib.sha512(big_r + k.public_key + msg).digest(), "little") % L
    return big_r + ((1 + kk * a) % L).to_bytes(32, "little")


def test_a_group_with_refused_batches_commits_the_others_together(tmp_path, monkeypatch):
    node, uses = _usable_node(tmp_path, 5)
    commits = count_commits(monkeypatch, node.store)
    before = node.store.count()
    batches = [[uses[0].raw], [forged(uses[1])], [uses[2].raw], [b"\x63junk"], [uses[3].raw], [uses[4].raw]]
    res = node.submit_group(batches)
    assert [r["ok"] for r in res] == [True, False, True, False, True, True]
    assert (res[1]["reason"], res[1]["index"]) == ("bad-signature", 0) and res[3]["reason"] == "unknown-type"
    assert [len(r.get("receipts", [])) for r in res] == [1, 0, 1, 0, 1, 1]
    assert commits[0] == 1  # the four good uploads and their receipts: one commit, not four
    assert node.store.count() == before + 8


def test_a_group_refused_twice_answers_each_batch_alone(tmp_path, monkeypatch):
    """The second try can still be refused (a batch that only failed because
    of another's record): then each batch goes alone, with its own answer."""
    node, uses = _usable_node(tmp_path, 3)
    tries = []
    real = node.store.submit_follow

    def flaky(raws, follow, signed_here=None):
        tries.append(len(raws))
        if len(tries) <= 2 and len(raws) > 1:
            v = ctb.Verdict(ctb.REJECTED, "unknown-token", "")
            raise BatchRejected(0, v, [v] + [ctb.Verdict(ctb.ACCEPTED, "", "")] * (len(raws) - 1))
        return real(raws, follow, signed_here)
    monkeypatch.setattr(node.store, "submit_follow", flaky)
    res = node.submit_group([[u.raw] for u in uses])
    assert [r["ok"] for r in res] == [True, True, True] and [len(r["receipts"]) for r in res] == [1, 1, 1]
    assert tries == [3, 2, 1, 1, 1]


# A node process that dies at a given moment of an upload (os._exit: no
# cleanup, no rollback, as a power cut or SIGKILL leaves the files).
_DIES = r'''
import os, sys
from pen.node import core
from pen.node.core import Node
from pen.samples import economy
from pen.store import SQLiteCTB
path, raw, when = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
node = Node(SQLiteCTB(path), node_key=economy()[0]["common-node"], clock=lambda: 1795000000)
if when == "making-receipts":  # the USE validated and written, its receipt signed, nothing committed
    made = core.make_receipts
    core.make_receipts = lambda *a: (made(*a), os._exit(9))
else:  # just after the commit
    commit = node.store._commit
    node.store._commit = lambda: (commit(), os._exit(9))
node.submit([raw])
os._exit(0)
'''


@pytest.mark.parametrize("when", ["making-receipts", "after-commit"])
def test_a_node_killed_mid_upload_holds_the_use_with_its_receipt_or_neither(tmp_path, when):
    """Before, the receipts were a second transaction: a node dying between
    the two kept a USE it had taken with no receipt, and a retry (a
    duplicate) never made one."""
    import subprocess
    import sys
    node, uses = _usable_node(tmp_path, 1)
    path, before = node.store.path, node.store.count()
    node.store.close()
    p = subprocess.run([sys.executable, "-c", _DIES, path, uses[0].raw.hex(), when], capture_output=True, timeout=60)
    assert p.returncode == 9, p.stderr.decode()[-2000:]
    from pen.node.core import Node
    from pen.samples import economy
    from pen.store import SQLiteCTB
    node = Node(SQLiteCTB(path), node_key=economy()[0]["common-node"], clock=lambda: 1795000000)
    held = node.receipts([(uses[0].fields[0], uses[0].id)])
    if when == "making-receipts":
        assert node.store.count() == before and node.store.get_record(uses[0].id) is None and held == []
        res = node.submit([uses[0].raw])  # the bridge's retry: taken now, with its receipt
        assert res["verdicts"][0]["code"] == ctb.ACCEPTED and len(res["receipts"]) == 1
    else:
        assert node.store.count() == before + 2 and node.store.get_record(uses[0].id) == uses[0].raw
        assert len(held) == 1 and R.parse(held[0]).fields[1] == uses[0].id


@pytest.mark.postgres
def test_on_postgresql_receipts_share_the_commit_and_a_refused_follow_up_is_rolled_back(pg_url, monkeypatch):
    from pen.node.core import Node
    from pen.pgstore import PostgresCTB
    from pen.samples import economy
    k, ordered, n = economy()
    node = Node(PostgresCTB(pg_url), node_key=k["common-node"], clock=lambda: 1795000000)
    node.submit([r.raw for r in ordered[:ordered.index(n["use"])]])
    carlos = Signer.from_phrase("carlos")
    uses = []
    for i in range(2):
        t = B.issue(k["formosa-plumbing"], 500 + i, 10, n["proposal"].fields[0])
        node.submit([t.raw, B.set_user(k["formosa-plumbing"], t.fields[0], carlos).raw])
        uses.append(B.use(carlos, t.fields[0], "50100000", "50100000"))
    commits = count_commits(monkeypatch, node.store)
    before = node.store.count()
    res = node.submit_group([[uses[0].raw], [forged(uses[1])]])
    assert res[0]["ok"] and len(res[0]["receipts"]) == 1 and res[1]["reason"] == "bad-signature"
    assert commits[0] == 1 and node.store.count() == before + 2
    stranger = Signer.from_phrase("not-a-ctb-node")
    verdicts, more = node.store.submit_follow(
        [uses[1].raw], lambda st, v: [B.accounted(stranger, uses[1].fields[0], uses[1].id, 1795000000)], stranger)
    assert verdicts[0].code == ctb.ACCEPTED and more == [] and node.store.count() == before + 3
    assert node.receipts([(uses[1].fields[0], uses[1].id)]) == []
    node.store.close()
