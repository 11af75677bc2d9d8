"""The whole node loop under the node's MicroPython heap (conftest.NODE_HEAP:
64 KB for the node plus the bytecode a board would keep in flash; node_loop_mpy.py),
and the in-process village kit under MicroPython."""
import subprocess

import fwpath  # noqa: F401
import pytest

from conftest import run_micropython, MPY_BUILD, NODE_HEAP, ROOT
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
@pytest.mark.parametrize("depth", [0, 3, 11])
def test_node_loop_runs_in_the_node_heap_across_journal_path_lengths(tmp_path, depth):
    # fragmentation depends on the journal path's length (a151bf1): several
    run_micropython("print(1)")  # builds protocol/ and firmware/ to .mpy
    d = tmp_path / ("d" * depth) if depth else tmp_path
    d.mkdir(exist_ok=True)
    out = run_micropython("", module=compiled("node_loop_mpy"), args=[str(d / "j.bin")], heap=NODE_HEAP)
    lines = out.split("\n")
    sent, receipts, spent, journal = [int(x) for x in lines[0].split()[1::2]]
    assert (sent, receipts, spent, journal) == (40, 20, 40, 0)
    mods, node, peak, free = [int(x) for x in lines[1].split()[1:]]
    assert mods < 44 * 1024  # the bytecode and module state (42.2 KB measured): it grows only on purpose
    assert peak - mods < 13 * 1024  # the node's own state and transients: 12.0 KB at a151bf1, 12.5 KB now


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
