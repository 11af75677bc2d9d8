"""A sleeping leaf asks for routes instead of retrying a parent that never
hears it: its ask beacons go on air (metric 255), nothing else of its routing
does; on both runtimes (tests/power/leaf_asks_check.py)."""
import powerpath  # noqa: F401
import subprocess
import sys

from powerpath import HERE, ROOT
from pen.sim.power import catch_share


def test_leaf_beacons_on_cpython():
    p = subprocess.run([sys.executable, str(HERE / "leaf_asks_check.py")], capture_output=True, text=True,
                       env={"PYTHONPATH": "%s:%s" % (ROOT / "protocol", ROOT / "firmware")})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "leaf asks ok"


def test_leaf_beacons_under_micropython_in_64k(mpy):
    assert mpy(str(HERE / "leaf_asks_check.py"), heap="64k").strip() == "leaf asks ok"


def test_a_leaf_in_duty_cycle_catches_a_short_preamble_only_by_chance():
    # one whole 4-symbol window inside an 8-symbol preamble: 4 of every 25 symbols
    assert catch_share(8, 4, 21) == 4 / 25.0
    assert catch_share(29, 4, 21) == 1.0  # the long preamble (sx126x.leaf_preamble) always
    assert catch_share(4, 4, 21) == 0.0 and catch_share(3, 4, 21) == 0.0
