"""BLE: the node side (pen_node.ble, aioble) under the MicroPython unix port
against a GATT double with aioble's API; the host side (pen.transport.ble)
at GATT level against bumble's virtual controllers (test_ble_bumble.py)."""
import os
import subprocess
from pathlib import Path

import pytest

from conftest import MICROPYPATH, MPY_BUILD, micropython_bin, run_micropython
from build_mpy import mpy_cross

HERE = Path(__file__).parent


@pytest.mark.micropython
def test_node_serves_pairing_and_sealed_frames_over_ble_at_mtu_23_and_185():
    run_micropython("print(1)")  # builds protocol/ and firmware/ to .mpy
    subprocess.run([mpy_cross(), "-o", str(MPY_BUILD / "ble_node_mpy.mpy"), str(HERE / "ble_node_mpy.py")],
                   check=True)
    env = dict(os.environ, MICROPYPATH=MICROPYPATH + ":" + str(HERE / "aioble_double"))
    # 192 KB as the e2e node: on the unix port every module's bytecode (and
    # here asyncio and the double, compiled at load) lives in the heap
    p = subprocess.run([micropython_bin(), "-X", "heapsize=192k", "-c", "import ble_node_mpy"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip().endswith("ok"), (p.stdout, p.stderr)
