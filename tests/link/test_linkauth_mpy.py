"""Pairing, a reboot and sealed SUBMITs run under the MicroPython unix port
(node and phone side: the same pen_protocol.linkauth), compiled as a board
build would be."""
import subprocess
from pathlib import Path

import pytest

from conftest import MPY_BUILD, run_micropython
from build_mpy import mpy_cross

pytestmark = pytest.mark.micropython
SCRIPT = Path(__file__).parent / "linkauth_mpy.py"


def test_pairing_and_sealed_frames_run_under_micropython():
    run_micropython("print(1)")  # builds protocol/ and firmware/ to .mpy
    MPY_BUILD.mkdir(parents=True, exist_ok=True)
    subprocess.run([mpy_cross(), "-o", str(MPY_BUILD / "linkauth_mpy.mpy"), str(SCRIPT)], check=True)
    # 128 KB as the service cases: the unix port keeps every module's
    # bytecode in the heap (mesh alone 31 KB); a board runs them frozen
    out = run_micropython("import linkauth_mpy", heap="128k")
    assert out.strip().endswith("ok"), out
