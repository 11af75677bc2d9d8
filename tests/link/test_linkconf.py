"""What a board's /pen.json turns on for the link (pen_node.linkconf)."""
import os

import kit  # noqa: F401
from pen_node.linkconf import ble_link, link_auth
from pen_protocol import linkauth as A


def test_no_pair_key_means_no_pairing():
    assert link_auth({}, os.urandom) is None and ble_link({}, None) is None


def test_pair_true_opens_a_code_once_and_keeps_a_provisioned_one(tmp_path):
    shown = []
    cfg = {"pair": True, "pair_file": str(tmp_path / "pen.pair")}
    a = link_auth(cfg, os.urandom, shown.append)
    assert shown == [a.code] and a.attempts == 5
    again = link_auth(cfg, os.urandom, shown.append)  # a reboot: the same code, not a new one
    assert again.code == a.code and shown == [a.code, a.code]
    (tmp_path / "prov.pair").write_bytes(A.state_bytes("482913", 5, []))  # as provisioning writes it
    p = link_auth({"pair": True, "pair_file": str(tmp_path / "prov.pair")}, os.urandom)
    assert p.code == "482913"
