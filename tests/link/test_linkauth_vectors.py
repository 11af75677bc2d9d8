"""protocol/vectors/linkauth.json (written by host/pen/vectors.py) replayed
on CPython and under MicroPython: X25519, the code's generator point, a
pairing with the right and a wrong code, sealed frames, byte for byte."""
import subprocess

import pytest

from conftest import ROOT, MPY_BUILD, run_micropython
from build_mpy import mpy_cross
import linkauth_vectors_check as V

VECTORS = ROOT / "protocol" / "vectors" / "linkauth.json"


def test_linkauth_vectors_replay_on_cpython():
    assert V.run(str(VECTORS)) == 0


def test_vectors_are_what_the_generator_writes():
    from pen.linkvectors import linkauth_vectors
    from pen.vectors import dump
    assert VECTORS.read_text() == dump(linkauth_vectors())


@pytest.mark.micropython
def test_linkauth_vectors_replay_under_micropython():
    run_micropython("print(1)")
    subprocess.run([mpy_cross(), "-o", str(MPY_BUILD / "linkauth_vectors_check.mpy"),
                    str(ROOT / "tests" / "link" / "linkauth_vectors_check.py")], check=True)
    out = run_micropython("import linkauth_vectors_check as V\nV.run(%r)" % str(VECTORS), heap="64k")
    assert out.strip().endswith("10 passed, 0 failed"), out
