"""The radio, two ways with one API.

On a board: micropython-lib's drivers (`lora-sx126x`, `lora-sx127x`, with
`lora-async`), built from a board profile (hardware/boards/<name>.json) and a preset
(pen_protocol.airtime.PRESETS). The node loop (firmware/main.py) only calls
what those drivers offer: `await modem.send(frame)`, `async for rx in
modem.recv_continuous()` yielding RxPacket (a bytearray with .rssi dBm,
.snr dB x4, .ticks_ms, .valid_crc), `modem.get_time_on_air_us(n)`,
`standby()`, `sleep()`.

On a PC: pen_node.simradio's SimAir + SimRadio, a test double with the same
API (its own module: a board never loads it).

Everything here but RxPacket runs once, at boot (main.run builds the modem
and its listen-before-talk hook, then lets this module go).

Channel activity detection on a board: micropython-lib's SX126x driver has no
CAD call, so pen_node/sx126x.py issues SetCadParams/SetCad through the
driver's own command path and reads CadDone/CadDetected; channel_busy_for()
gives MeshNode that as its listen-before-talk hook. An SX127x board still
runs with channel_busy=None (always clear: its CAD is not wrapped yet) and
relies on the mesh's jittered, SNR-scaled timing; the simulators pass
SimRadio's or their medium's channel_busy.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_SPI_BAUD = const(2000000)  # both chips allow 10-16 MHz; 2 MHz is robust on long board traces
_TCXO_START_US = const(1000)  # SX1262 DS 13.3.6: TCXO start-up, the driver's default
_RAIL_SETTLE_MS = const(10)  # a switched LDO/Vext rail is up well within this before the radio's reset


def lora_cfg(preset, power_dbm=None):
    """The driver's lora_cfg dict for a preset (keys as micropython-lib's
    lora.modem documents them)."""
    return {
        "freq_khz": preset.freq_khz,
        "sf": preset.sf,
        "bw": str(preset.bw_hz // 1000),  # the driver takes a string, e.g. "125"
        "coding_rate": preset.cr,
        "preamble_len": preset.preamble,
        "output_power": preset.power_dbm if power_dbm is None else power_dbm,
        "crc_en": True,
        "implicit_header": False,
    }


_AXP192_ADDR = const(0x34)  # AXP192 DS 9.1: I2C address
_AXP192_POWER_OUT = const(0x12)  # REG 12H: output enables; bit 2 = LDO2
_AXP192_LDO3_ON = const(0x08)  # REG 12H bit 3
_AXP192_LDO23_MV = const(0x28)  # REG 28H: LDO2 voltage in bits 7-4, 1.8-3.3 V in 100 mV steps


def _axp192_ldo(machine, rail):
    """Switch on an AXP192 LDO (the T-Beam v1.1 feeds its radio from LDO2),
    and off the one named by off_ldo (its GPS on LDO3: ~45 mA, more than a
    relay's whole budget; docs/power.md)."""
    i2c = machine.I2C(0, sda=machine.Pin(rail["i2c"]["sda"]), scl=machine.Pin(rail["i2c"]["scl"]))
    if rail["ldo"] != 2:
        raise ValueError("only AXP192 LDO2 is wired to a radio on the boards here")
    step = (rail["mv"] - 1800) // 100
    v = i2c.readfrom_mem(_AXP192_ADDR, _AXP192_LDO23_MV, 1)[0]
    i2c.writeto_mem(_AXP192_ADDR, _AXP192_LDO23_MV, bytes(((step << 4) | (v & 0x0F),)))
    on = i2c.readfrom_mem(_AXP192_ADDR, _AXP192_POWER_OUT, 1)[0] | 0x04
    if rail.get("off_ldo") == 3:
        on &= ~_AXP192_LDO3_ON
    i2c.writeto_mem(_AXP192_ADDR, _AXP192_POWER_OUT, bytes((on,)))


def _power_rails(board, machine):
    """Supplies the radio needs before its first SPI command: a GPIO-switched
    rail (Heltec's Vext) or a PMU LDO (T-Beam's AXP192)."""
    for rail in board.get("rails", ()):
        if "pin" in rail:
            machine.Pin(rail["pin"], machine.Pin.OUT, value=rail["on"])
        elif rail.get("pmu") == "axp192":
            _axp192_ldo(machine, rail)
        else:
            raise ValueError("unknown power rail " + str(rail))
    if board.get("rails"):
        _settle()


def _settle():
    import time
    time.sleep_ms(_RAIL_SETTLE_MS)


def make_radio(board, preset, use_async=True):
    """Build the board's modem. Imports the drivers only here: a PC never needs them."""
    import machine
    _power_rails(board, machine)
    s = board["spi"]
    spi = machine.SPI(s["id"], baudrate=s.get("baudrate", _SPI_BAUD), sck=machine.Pin(s["sck"]),
                      mosi=machine.Pin(s["mosi"]), miso=machine.Pin(s["miso"]))
    p = board["pins"]
    pin = machine.Pin
    power = min(preset.power_dbm, board.get("max_power_dbm", preset.power_dbm))
    cfg = lora_cfg(preset, power)
    if board.get("tx_ant"):
        # SX127x modules on these boards wire only PA_BOOST to the antenna;
        # the driver's default (RFO) would transmit into nothing (DS 3.4.2)
        cfg["tx_ant"] = board["tx_ant"]
    if board["radio"] == "sx1262":
        if use_async:
            from lora import AsyncSX1262 as Chip
        else:
            from lora import SX1262 as Chip
        return Chip(spi, pin(p["cs"]), pin(p["busy"]), dio1=pin(p["dio1"]),
                    dio2_rf_sw=board.get("dio2_rf_switch", True),
                    dio3_tcxo_millivolts=board.get("tcxo_mv"), dio3_tcxo_start_time_us=_TCXO_START_US,
                    reset=pin(p["reset"]), lora_cfg=cfg)
    if board["radio"] == "sx1276":
        if use_async:
            from lora import AsyncSX1276 as Chip
        else:
            from lora import SX1276 as Chip
        return Chip(spi, pin(p["cs"]), dio0=pin(p["dio0"]), dio1=pin(p["dio1"]) if p.get("dio1") else None,
                    reset=pin(p["reset"]), lora_cfg=cfg)
    raise ValueError("unknown radio " + board["radio"])


def channel_busy_for(board, preset, modem, sleep_us=None):
    """MeshNode's listen-before-talk hook, channel_busy(now_ms) -> bool: CAD
    on an SX126x (pen_node.sx126x), None (always clear) on an SX127x."""
    if board["radio"] != "sx1262":
        return None
    from . import sx126x
    if sleep_us is None:
        import time
        sleep_us = time.sleep_us
    sym_us = (1 << preset.sf) * 1000000 // preset.bw_hz
    return sx126x.busy_hook(modem, preset.sf, sym_us, sleep_us)


# -- host test double ---------------------------------------------------------


class RxPacket(bytearray):
    """Like the driver's RxPacket: the frame's bytes plus how it arrived."""

    def __init__(self, data, ticks_ms, snr, rssi, valid_crc=True):
        super().__init__(data)
        self.ticks_ms = ticks_ms
        self.snr = snr  # dB x 4, as the driver reports it
        self.rssi = rssi  # dBm
        self.valid_crc = valid_crc
