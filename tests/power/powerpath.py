"""Puts protocol/, firmware/ and this directory on sys.path (imported first by the tests here)."""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for p in (ROOT / "protocol", ROOT / "firmware", HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def run_on_cpython(script):
    """A check script of this directory (the one that runs under MicroPython
    too) in a fresh CPython with only protocol/ and firmware/ on its path;
    -> its stdout, stripped (it must exit 0)."""
    p = subprocess.run([sys.executable, str(HERE / script)], capture_output=True, text=True,
                       env={"PYTHONPATH": "%s:%s" % (ROOT / "protocol", ROOT / "firmware")})
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()
