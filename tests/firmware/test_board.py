"""Board-side pieces that cannot run here whole: the package manifest, board
profiles and radio plans, the radio wrapper (built over stand-in drivers) and
its host double, and main.py importing under the unix port."""
import json
import subprocess
import sys
import types

import fwpath  # noqa: F401
import pytest

from conftest import ROOT
from build_mpy import mpy_cross
from pen_protocol.airtime import PRESETS
from pen_node import power
from pen_node import radio as R
from pen_node.radio import lora_cfg
from pen_node.simradio import SimAir, SimRadio
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from medium_node import XorShift
from meshkit import use_record
from pen_protocol.frame import T_ACK as F_ACK

FW = ROOT / "firmware"
HW = ROOT / "hardware"
BOARDS = ("heltec-v3", "tbeam-v1.1-sx1276", "tbeam-v1.1-sx1262", "ttgo-lora32-v2.1", "t3-s3")
PROFILE_KEYS = {"id", "name", "mcu", "radio", "spi", "pins", "tcxo_mv", "dio2_rf_switch", "tx_ant", "rails",
                "max_power_dbm", "_source"}


def board(name):
    return json.loads((HW / "boards" / (name + ".json")).read_text())


def test_package_json_lists_every_node_and_protocol_module_and_nothing_for_the_root():
    # mip installs under /lib: main.py and /hardware there would never be read
    # (pen board provision puts them at /; docs/deploy.md)
    pkg = json.loads((FW / "package.json").read_text())
    assert set(pkg) == {"urls", "deps", "version"}
    dests = [d for d, s in pkg["urls"]]
    assert len(dests) == len(set(dests))
    for dest, src in pkg["urls"]:
        assert (FW / src).resolve().exists(), src
    wanted = {"pen_node/" + m.name for m in (FW / "pen_node").glob("*.py")}
    wanted |= {"pen_protocol/" + m.name for m in (ROOT / "protocol" / "pen_protocol").glob("*.py")}
    assert set(dests) == wanted
    assert [d[0] for d in pkg["deps"]] == ["lora-sx126x", "lora-sx127x", "lora-async", "aioble"]


def test_every_board_profile_is_complete():
    assert sorted(p.stem for p in (HW / "boards").glob("*.json")) == sorted(BOARDS)
    radios = json.loads((HW / "power.json").read_text())
    for name in BOARDS:
        b = board(name)
        assert set(b) == PROFILE_KEYS, name
        assert b["id"] == name
        assert set(b["spi"]) == {"id", "sck", "mosi", "miso", "baudrate"}
        assert set(b["pins"]) == {"cs", "reset", "busy", "dio1", "dio0"}
        assert b["radio"] in radios["radios"] and b["mcu"] in radios["mcus"]
        for rail in b["rails"]:
            assert "pin" in rail and rail["on"] in (0, 1) or rail["pmu"] == "axp192" and rail["ldo"] == 2
            if rail.get("pmu"):
                assert rail["off_ldo"] == 3  # a T-Beam's GPS: off
        if b["radio"] == "sx1262":
            # BUSY and DIO1 are how the driver talks to an SX126x; these modules all run a 1.8 V TCXO
            assert None not in (b["pins"]["busy"], b["pins"]["dio1"])
            assert b["tcxo_mv"] == 1800 and b["dio2_rf_switch"] is True and b["tx_ant"] is None
            assert b["max_power_dbm"] == 22
        else:
            assert b["pins"]["dio0"] is not None and b["pins"]["busy"] is None
            assert b["tcxo_mv"] is None and b["tx_ant"] == "PA_BOOST" and b["max_power_dbm"] == 17


@pytest.mark.parametrize("name,spi,pins", [
    ("heltec-v3", (9, 10, 11), {"cs": 8, "reset": 12, "busy": 13, "dio1": 14, "dio0": None}),
    ("tbeam-v1.1-sx1276", (5, 27, 19), {"cs": 18, "reset": 23, "busy": None, "dio1": 33, "dio0": 26}),
    ("tbeam-v1.1-sx1262", (5, 27, 19), {"cs": 18, "reset": 23, "busy": 32, "dio1": 33, "dio0": None}),
    ("ttgo-lora32-v2.1", (5, 27, 19), {"cs": 18, "reset": 23, "busy": None, "dio1": 33, "dio0": 26}),
    ("t3-s3", (5, 6, 3), {"cs": 7, "reset": 8, "busy": 34, "dio1": 33, "dio0": None}),
])
def test_board_pins_are_the_reference_tables(name, spi, pins):
    b = board(name)
    assert (b["spi"]["sck"], b["spi"]["mosi"], b["spi"]["miso"]) == spi
    assert b["pins"] == pins


def test_every_board_has_power_figures_for_its_own_chips():
    figs = json.loads((HW / "power.json").read_text())
    assert sorted(figs["boards"]) == sorted(BOARDS)
    for name in BOARDS:
        b = power.load_budget(name, str(HW))
        assert (b.radio_name, b.mcu_name) == (board(name)["radio"], board(name)["mcu"])
        assert b.radio == figs["radios"][board(name)["radio"]]
        assert 0 < b.overhead_ma < 1 and b.battery_mah > 0


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


def test_sim_radio_time_on_air_is_the_preset_formula_and_frames_arrive():
    p = PRESETS["eu868-sf9"]
    air = SimAir({(1, 2): (-95, 12)})
    a, b = SimRadio(air, 1, p), SimRadio(air, 2, p)
    assert a.get_time_on_air_us(100) == p.airtime_us(100) == 553984
    end = a.send(b"x" * 100)
    rx = b.recv(10)
    assert bytes(rx) == b"x" * 100 and rx.snr == 12 and rx.rssi == -95 and rx.ticks_ms == end
    assert b.recv(10) is None
    with pytest.raises(ValueError):
        a.send(bytes(256))


def test_mesh_node_through_sim_radios():
    p = PRESETS["eu868-sf9"]
    air = SimAir({(1, 2): (-90, 20), (2, 1): (-90, 20)})
    radios = {1: SimRadio(air, 1, p), 2: SimRadio(air, 2, p)}
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


def test_sim_radio_senses_a_neighbours_carrier_only_while_it_is_on_air():
    p = PRESETS["eu868-sf9"]
    air = SimAir({(1, 2): (-95, 12), (2, 1): (-95, 12)})
    a, b, c = SimRadio(air, 1, p), SimRadio(air, 2, p), SimRadio(air, 3, p)  # 3 hears nobody
    end = a.send(bytes(100))
    assert end == 553
    assert b.channel_busy(0) and b.channel_busy(552)
    assert not b.channel_busy(553)  # the frame has ended
    assert not c.channel_busy(100)  # out of range
    assert not a.channel_busy(100)  # its own carrier is not "busy"
    assert not b.channel_busy()  # the air's clock is at the frame's end


def test_mesh_node_waits_while_sim_radio_hears_a_carrier():
    p = PRESETS["eu868-sf9"]
    air = SimAir({(1, 2): (-95, 12), (2, 1): (-95, 12)})
    a, b = SimRadio(air, 1, p), SimRadio(air, 2, p)
    n = MeshNode(2, p, Journal(MemStorage(8192)), XorShift(2), channel_busy=b.channel_busy)
    n.parent, n.metric = 1, 1
    n.nbr[1] = [0, 40, 0, 0]
    assert n.submit(use_record(1), 0)
    a.send(bytes(255))  # a long frame from 1: on air 0 .. 1249 ms
    first = None
    t = 0
    while t < 20000 and first is None:
        if n.next_tx(t) is not None:
            first = t
        t = max(t + 1, n.next_wakeup_ms(t))
    assert first is not None and first >= 1249
    assert n.stats["tx_frames"] == 1


class _Recorder:
    """Stands in for a micropython-lib chip class: keeps how it was built."""

    def __init__(self, *args, **kw):
        self.args = args
        self.kw = kw


def _stand_in_board_modules(monkeypatch, power_out=0x01):
    calls = []
    machine = types.ModuleType("machine")

    class Pin:
        OUT = 1

        def __init__(self, n, mode=None, value=None):
            self.n = n
            if value is not None:
                calls.append(("pin", n, value))

        def __eq__(self, other):
            return isinstance(other, Pin) and other.n == self.n

        def __repr__(self):
            return "Pin(%d)" % self.n

    class SPI:
        def __init__(self, bus, baudrate, sck, mosi, miso):
            calls.append(("spi", bus, baudrate, sck.n, mosi.n, miso.n))

    class I2C:
        def __init__(self, bus, sda, scl):
            self.regs = {0x28: 0x0C, 0x12: power_out}

        def readfrom_mem(self, addr, reg, n):
            return bytes((self.regs[reg],))

        def writeto_mem(self, addr, reg, data):
            calls.append(("i2c", addr, reg, data[0]))

    machine.Pin, machine.SPI, machine.I2C = Pin, SPI, I2C
    lora = types.ModuleType("lora")
    for chip in ("SX1262", "SX1276", "AsyncSX1262", "AsyncSX1276"):
        setattr(lora, chip, type(chip, (_Recorder,), {}))
    monkeypatch.setitem(sys.modules, "machine", machine)
    monkeypatch.setitem(sys.modules, "lora", lora)
    monkeypatch.setattr(R, "_settle", lambda: None)
    return calls, Pin


def test_make_radio_builds_an_sx1262_with_the_boards_tcxo_switch_and_rail(monkeypatch):
    calls, Pin = _stand_in_board_modules(monkeypatch)
    modem = R.make_radio(board("heltec-v3"), PRESETS["eu868-sf9"])
    assert type(modem).__name__ == "AsyncSX1262"
    assert modem.args[1:] == (Pin(8), Pin(13))  # (spi, cs, busy)
    assert modem.kw["dio1"] == Pin(14) and modem.kw["reset"] == Pin(12)
    assert modem.kw["dio2_rf_sw"] is True and modem.kw["dio3_tcxo_millivolts"] == 1800
    assert modem.kw["lora_cfg"] == lora_cfg(PRESETS["eu868-sf9"], 22)  # 27 dBm allowed, the SX1262 gives 22
    assert "tx_ant" not in modem.kw["lora_cfg"]
    assert calls[0] == ("pin", 36, 0)  # Vext on (active low) before the bus is touched
    assert calls[1] == ("spi", 1, 2000000, 9, 10, 11)


def test_make_radio_builds_an_sx1276_on_pa_boost_after_the_pmu_rail(monkeypatch):
    calls, Pin = _stand_in_board_modules(monkeypatch)
    p = PRESETS["eu868-sf9"]  # 27 dBm allowed in h1.6; the SX1276's PA_BOOST gives 17
    modem = R.make_radio(board("tbeam-v1.1-sx1276"), p, use_async=False)
    assert type(modem).__name__ == "SX1276"
    assert modem.kw["dio0"] == Pin(26) and modem.kw["dio1"] == Pin(33) and modem.kw["reset"] == Pin(23)
    assert modem.kw["lora_cfg"]["tx_ant"] == "PA_BOOST"
    assert modem.kw["lora_cfg"]["output_power"] == min(p.power_dbm, 17)
    # AXP192: LDO2 set to 3.3 V (step 15 in the high nibble, LDO3's voltage kept) then enabled (bit 2 of
    # 12H), and LDO3 (the GPS) off in the same write (bit 3, already off in this stand-in)
    assert calls[:2] == [("i2c", 0x34, 0x28, 0xFC), ("i2c", 0x34, 0x12, 0x05)]


def test_make_radio_switches_the_t_beams_gps_off_with_the_radio_rail_on(monkeypatch):
    calls, Pin = _stand_in_board_modules(monkeypatch, power_out=0x4D)  # AXP192 power-up: DC-DCs, LDO2, LDO3 on
    R.make_radio(board("tbeam-v1.1-sx1262"), PRESETS["eu868-sf9"])
    assert calls[1] == ("i2c", 0x34, 0x12, 0x45)  # LDO2 kept on, LDO3 (bit 3) cleared, the rest untouched


def test_make_radio_refuses_an_unknown_chip(monkeypatch):
    _stand_in_board_modules(monkeypatch)
    b = dict(board("t3-s3"), radio="sx1280")
    with pytest.raises(ValueError, match="unknown radio sx1280"):
        R.make_radio(b, PRESETS["eu868-sf9"])


@pytest.mark.micropython
def test_main_imports_under_the_unix_port_without_touching_hardware(mpy):
    # main.py pulls in the modules the running node keeps (bytecode in the
    # heap when loaded from .mpy, as here; frozen modules keep it in flash):
    # 85,120 B when it imported the boot path's too, 67,104 B since run()
    # imports those (radio construction, sleep wiring, journal, duty record,
    # pairing) and lets the boot-only ones go. What a booted node holds, those
    # included: tests/board/test_provision.py's BOOT_HEAP
    out = mpy("import gc\nimport main\ngc.collect()\n"
              "print(main.LinkService is not None, main.BOARDS % 'heltec-v3', main.JOURNAL_BYTES, gc.mem_alloc())",
              heap="112k")
    words = out.split()
    assert words[:3] == ["True", "/hardware/boards/heltec-v3.json", "32768"]
    assert int(words[3]) < 72 * 1024


def test_link_events_go_to_the_ble_phone_while_connected_else_to_the_serial_link():
    import main

    class Ble:
        conn = None
        sent = []

        def send(self, data):  # BleLink.send: False with no phone connected
            if self.conn is None:
                return False
            self.sent.append(data)
            return True

    serial, ble = [], Ble()
    emit = main.events_to(ble, serial.append)
    emit(b"\x01event")
    assert serial == [b"\x01event"] and ble.sent == []
    ble.conn = object()
    emit(b"\x02event")
    assert serial == [b"\x01event"] and ble.sent == [b"\x02event"]
    assert main.events_to(None, serial.append) == serial.append


def test_main_still_imports_without_the_link_service(monkeypatch):
    monkeypatch.setitem(sys.modules, "pen_node.service", None)  # import fails as if absent
    monkeypatch.delitem(sys.modules, "main", raising=False)
    import main
    assert main.LinkService is None
    monkeypatch.delitem(sys.modules, "main")


class VirtualTime:
    """An asyncio loop in virtual time (trio's autojump clock, for asyncio):
    when no task is ready, time jumps to the next timer instead of waiting.
    Every run is the same, at any machine load. There is no I/O here but the
    loop's own wake-up pipe, so select() never needs to block."""

    def __init__(self):
        import selectors
        outer = self
        self.t = 0.0

        class Jump(selectors.DefaultSelector):
            def select(self, timeout=None):
                ready = super().select(0)
                if not ready and timeout:
                    outer.t += timeout
                return ready

        import asyncio
        self.loop = asyncio.SelectorEventLoop(Jump())
        self.loop.time = lambda: self.t

    def ms(self):
        return int(self.t * 1000)

    def run(self, coro):
        try:
            return self.loop.run_until_complete(coro)
        finally:
            self.loop.close()


class AsyncSimRadio:
    """The async driver's shape (await send, recv_continuous) over a link
    table: a send takes its airtime (virtual), then the frame reaches every
    linked radio's queue."""

    def __init__(self, radios, links, addr, preset):
        import asyncio
        self.radios, self.links, self.addr, self.preset = radios, links, addr, preset
        self.q = asyncio.Queue()
        self.sent = []
        self.sending = False
        radios[addr] = self

    async def send(self, packet, tx_at_ms=None):
        import asyncio
        self.sent.append(bytes(packet))
        self.sending = True
        await asyncio.sleep(self.preset.airtime_us(len(packet)) / 1e6)
        self.sending = False
        for a, r in self.radios.items():
            link = self.links.get((self.addr, a))
            if link is not None:
                r.q.put_nowait(R.RxPacket(packet, 0, link[1], link[0]))

    def recv_continuous(self):
        return self

    def __aiter__(self):
        return self

    async def __anext__(self):
        return await self.q.get()


def test_main_tasks_carry_a_payment_from_store_to_bridge_over_async_radios():
    # Regression: this ran on the wall clock and stopped at an arbitrary
    # instant, which could fall between a task's next_tx and its maybe_save
    # (a send still on air), so the save count came one short on a busy
    # machine. Now the loop runs in virtual time and stops only while no
    # radio is sending: the same run every time.
    import asyncio
    import main
    p = PRESETS["eu868-sf9"]
    links = {(1, 2): (-90, 20), (2, 1): (-90, 20)}
    radios = {}
    nodes = {1: MeshNode(1, p, Journal(MemStorage(8192)), XorShift(1), is_bridge=True),
             2: MeshNode(2, p, Journal(MemStorage(8192)), XorShift(2))}
    vt = VirtualTime()
    clock = vt.ms
    assert nodes[2].submit(use_record(1), clock())

    from pen_node.dutyrecord import DutyRecord, RECORD_BYTES

    class SavesSeen(DutyRecord):
        calls = 0

        def maybe_save(self, duty, now_ms):
            SavesSeen.calls += 1
            return DutyRecord.maybe_save(self, duty, now_ms)

    def settled():
        return nodes[1].delivered and not nodes[2].journal.live and not any(r.sending for r in radios.values())

    async def village():
        tasks = [asyncio.ensure_future(main.serve(nodes[a], AsyncSimRadio(radios, links, a, p), clock,
                                                  duty_record=SavesSeen(MemStorage(RECORD_BYTES))))
                 for a in (1, 2)]
        try:
            # until the bridge has it and the store let go of it on the bridge's ack
            while not settled() and clock() < 120000:
                await asyncio.sleep(0.02)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    vt.run(village())
    assert clock() < 120000
    assert nodes[1].delivered == [use_record(1)]  # the bridge has it for its host
    assert nodes[2].parent == 1  # learnt from the bridge's beacon, sent by the tx task
    sent_types = [f[0] for f in radios[1].sent]
    assert F_ACK in sent_types and nodes[2].stats["acks_heard"] >= 1 and nodes[2].journal.live == {}
    # the tx task offers the law's record a save after every frame it sent
    assert SavesSeen.calls == nodes[1].stats["tx_frames"] + nodes[2].stats["tx_frames"]


@pytest.mark.micropython
def test_main_tasks_carry_a_payment_under_the_unix_port(mpy):
    out = mpy("", heap="192k", module="main_tasks_check").split()
    assert out[:8] == ["delivered", "1", "1", "held", "0", "parent", "1", "frames"]
    assert int(out[8]) >= 2 and int(out[9]) >= 1  # bridge: beacon + ack; store: the payment


def test_freeze_manifest_names_the_same_code_and_dependencies_as_package_json():
    calls = []
    env = {name: (lambda name: lambda *a, **kw: calls.append((name, a, kw)))(name)
           for name in ("include", "require", "package", "module")}
    exec((FW / "manifest.py").read_text(), env)
    pkg = json.loads((FW / "package.json").read_text())
    assert [c[1][0] for c in calls if c[0] == "require"] == [d[0] for d in pkg["deps"]]
    packages = {c[1][0]: (FW / c[2].get("base_path", ".") / c[1][0]).resolve() for c in calls if c[0] == "package"}
    assert packages == {"pen_node": FW / "pen_node", "pen_protocol": ROOT / "protocol" / "pen_protocol"}
    assert [c[1][0] for c in calls if c[0] == "module"] == ["main.py"]
