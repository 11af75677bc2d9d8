"""A sleeping leaf asks for routes instead of retrying a parent that never
hears it: its ask beacons go on air (metric 255), nothing else of its routing
does; on both runtimes (tests/power/leaf_asks_check.py)."""
import pytest
import powerpath  # noqa: F401

from powerpath import HERE, run_on_cpython
from pen.sim.power import catch_share


def test_leaf_beacons_on_cpython():
    assert run_on_cpython("leaf_asks_check.py") == "leaf asks ok"


def test_leaf_beacons_under_micropython_in_64k(mpy):
    assert mpy(str(HERE / "leaf_asks_check.py"), heap="64k").strip() == "leaf asks ok"


def test_a_leaf_reads_the_ask_from_the_beacons_its_own_routing_makes():
    # the frames routing really builds (not a hand-made layout that may drift from it)
    from pen_protocol import frame as F
    from pen_protocol.airtime import PRESETS
    from pen_node.journal import Journal
    from pen_node.memstorage import MemStorage
    from pen_node.mesh import MeshNode
    from pen_node.sleep import leaf_beacon
    import random
    n = MeshNode(9, PRESETS["eu868-sf9"], Journal(MemStorage(4096)), random.Random(1))
    for a, snr in ((3, 20), (5, 8)):  # neighbours heard, routeless: listed as hearing them
        n.nbr[a] = [255, snr, 0, 0]
    n.parent, n.metric = 3, 40
    plain = n._beacon_frame(1000)
    assert len(plain) > F.HEADER_LEN + 5  # its "I heard you" list is there
    assert leaf_beacon(plain, None) is None
    n.ask_round = True
    asking = n._beacon_frame(1000)
    got = leaf_beacon(asking, None)
    assert got is not None and got[10] == 255 and got[12] & 1 and got[13:] == asking[13:]


def test_a_leaf_in_duty_cycle_catches_a_short_preamble_only_by_chance():
    # SF9 (4096 us symbols), a 53-symbol sleep on a TCXO board: a 9-symbol window in a 62-symbol cycle
    # (boardsleep.duty_cycle). The chip latches on 8 symbols, so an 8-symbol preamble is caught only when a
    # window holds it whole: 9 - 8 = 1 symbol of phase in 62
    dc = (36864, 215088, 2000)
    assert catch_share(9, 125000, 8, dc) == pytest.approx(4096 / 253952.0)
    assert catch_share(9, 125000, 69, dc) == 1.0  # the long preamble (boardsleep.leaf_preamble) always
    assert catch_share(9, 125000, 7, dc) == 0.0 and catch_share(9, 125000, 0, dc) == 0.0  # under a latch
    assert catch_share(9, 125000, 40, dc) == pytest.approx((40 * 4096 + 36864 - 16 * 4096) / 253952.0)
