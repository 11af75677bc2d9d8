"""Only authentic frames change a node's state (issue 10, items 9-11), on
CPython and under MicroPython: the scenarios are tests/mpy/forgery_check.py,
one code for both runtimes. The node-kill frame (item 8) is
test_frames_from_air.py."""
import fwpath  # noqa: F401  (protocol/ and firmware/ on the path)
import pytest

import forgery_check as FC
from pen_protocol import frame as F
from pen_node.service import LinkService
from pen_protocol import link as L

# what both runtimes must print (the same scenario code runs on both)
EXPECTED = {
    # forged frames of every kind: state unchanged, each counted, nothing in the spent set
    "unauthentic": "(True, 15, 0)",
    # the real spend kept through a flood of 599 sealed junk spends; junk refused;
    # a day later new refs go in again and the oldest fall out
    "junk": "(1, True, 1, True)",
    # 48 unsigned USEs from one origin: 12 taken (a quarter), the store's submit taken;
    # from 48 origins: 30 taken (the journal's bytes, less the store's reserve), the submit taken
    "custody": "[12, True, 30, True]",
    # an outsider's receipt: no event; an insider's: one event, unverified, the record whole
    "receipts": "(0, [(True, True, True, False)])",
}


def test_unauthentic_frames_change_nothing():
    same, bad_mac, spent = FC.unauthentic_frames_change_nothing()
    assert same and bad_mac == 15 and spent == 0


def test_a_junk_flood_cannot_flush_a_real_spend_from_the_village_set():
    kept, refused, later, oldest_gone = FC.junk_cannot_flush_a_real_spend()
    assert kept == 1 and refused and later == 1 and oldest_gone


def test_48_unsigned_uses_cannot_block_the_stores_honest_submit():
    one_origin, submitted, many_origins, submitted_too = FC.flood_of_unsigned_uses_cannot_block_the_store()
    assert (one_origin, submitted, many_origins, submitted_too) == (12, True, 30, True)


def test_a_forged_receipt_never_reaches_the_store_and_an_insiders_is_marked_unverified():
    outsider, insider = FC.forged_receipts()
    assert outsider == 0 and insider == [(True, True, True, False)]


def test_the_link_service_hands_the_store_the_whole_receipt_to_verify():
    n = FC.node()
    svc = LinkService(n)
    n.submit(FC.use(5), 0)
    FC.heard(n, F.record_frame(FC.accounted(5), 1, FC.ME, 1), FC.KEY, 1000)
    got = list(L.Decoder().feed(svc.poll(1000)))
    assert [(f.kind, bytes(f.payload)) for f in got] == [(L.EV_RECEIPT, FC.accounted(5))]


def test_the_same_figures_on_cpython():
    r = FC.run()
    assert {k: str(v) for k, v in r.items()} == EXPECTED


@pytest.mark.micropython
def test_the_forgeries_are_refused_under_micropython(mpy):
    # five nodes one after another: behaviour, not the heap budget (test_heap.py)
    out = mpy("", heap="512k", module="forgery_check").strip().split("\n")
    assert dict(line.split(" ", 1) for line in out) == EXPECTED


@pytest.mark.parametrize("cfg", [{}, {"net_key": ""}, {"net_key": "00" * 15}, {"net_key": 1234}])
def test_a_board_without_the_village_secret_does_not_start(cfg):
    import main
    with pytest.raises(ValueError) as e:
        main.net_secret(cfg)
    assert "net_key" in str(e.value)


def test_a_board_reads_the_village_secret_from_its_config():
    import main
    assert main.net_secret({"net_key": "ab" * 16}) == b"\xab" * 16
