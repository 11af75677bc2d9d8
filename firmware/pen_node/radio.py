"""The radio, two ways with one API.

On a board: micropython-lib's drivers (`lora-sx126x`, `lora-sx127x`, with
`lora-async`), built from a board profile (hardware/boards.json) and a preset
(pen_protocol.airtime.PRESETS). The node loop (firmware/main.py) only calls
what those drivers offer: `await modem.send(frame)`, `await modem.recv(timeout_ms)`
-> RxPacket (a bytearray with .rssi dBm, .snr dB x4, .ticks_ms, .valid_crc) or
None, `modem.get_time_on_air_us(n)`, `standby()`, `sleep()`.

On a PC: FakeAir + FakeRadio, a test double with the same API (sync
send/recv; RxPacket-like packets) whose time on air is pen_protocol.airtime's
Semtech formula, the same numbers the driver computes.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from pen_protocol.airtime import time_on_air_us

SPI_BAUD = const(2000000)  # both chips allow 10-16 MHz; 2 MHz is robust on long board traces
TCXO_START_US = const(1000)  # SX1262 DS 13.3.6: TCXO start-up, the driver's default


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


def _power_rails(board, machine):
    # Vext-style rails switched by a GPIO; PMU rails (T-Beam's AXP192) need
    # an I2C write that main.py does with the board's pmu helper, not here
    for rail in board.get("rails", ()):
        if "pin" in rail:
            machine.Pin(rail["pin"], machine.Pin.OUT, value=rail["on"])


def make_modem(board, preset, use_async=True):
    """Build the board's modem. Imports the drivers only here: a PC never needs them."""
    import machine
    _power_rails(board, machine)
    s = board["spi"]
    spi = machine.SPI(s["id"], baudrate=s.get("baudrate", SPI_BAUD), sck=machine.Pin(s["sck"]),
                      mosi=machine.Pin(s["mosi"]), miso=machine.Pin(s["miso"]))
    p = board["pins"]
    pin = machine.Pin
    power = min(preset.power_dbm, board.get("max_power_dbm", preset.power_dbm))
    cfg = lora_cfg(preset, power)
    if board["radio"] == "sx1262":
        if use_async:
            from lora import AsyncSX1262 as Chip
        else:
            from lora import SX1262 as Chip
        return Chip(spi, pin(p["cs"]), pin(p["busy"]), dio1=pin(p["dio1"]),
                    dio2_rf_sw=board.get("dio2_rf_switch", True),
                    dio3_tcxo_millivolts=board.get("tcxo_mv"), dio3_tcxo_start_time_us=TCXO_START_US,
                    reset=pin(p["reset"]), lora_cfg=cfg)
    if board["radio"] == "sx1276":
        if use_async:
            from lora import AsyncSX1276 as Chip
        else:
            from lora import SX1276 as Chip
        return Chip(spi, pin(p["cs"]), dio0=pin(p["dio0"]), dio1=pin(p["dio1"]) if p.get("dio1") else None,
                    reset=pin(p["reset"]), lora_cfg=cfg)
    raise ValueError("unknown radio " + board["radio"])


# -- host test double ---------------------------------------------------------

class RxPacket(bytearray):
    """Like the driver's RxPacket: the frame's bytes plus how it arrived."""

    def __init__(self, data, ticks_ms, snr, rssi, valid_crc=True):
        super().__init__(data)
        self.ticks_ms = ticks_ms
        self.snr = snr  # dB x 4, as the driver reports it
        self.rssi = rssi  # dBm
        self.valid_crc = valid_crc


class FakeAir:
    """What several FakeRadios share: a clock and a link table
    {(src, dst): (rssi_dbm, snr_x4)}. A frame is heard by every radio the
    table links to the sender that is listening (not itself sending)."""

    def __init__(self, links):
        self.links = links
        self.now_ms = 0
        self.radios = {}

    def attach(self, radio):
        self.radios[radio.addr] = radio


class FakeRadio:
    def __init__(self, air, addr, preset):
        self.air = air
        self.addr = addr
        self.preset = preset
        self.inbox = []
        self.sent = []
        self.state = "standby"
        air.attach(self)

    def get_time_on_air_us(self, plen):
        p = self.preset
        return time_on_air_us(plen, p.sf, p.bw_hz, p.cr, p.preamble)

    def send(self, packet, tx_at_ms=None):
        """Transmit now (the driver's sync API); returns the ticks it ended at."""
        if len(packet) > 255:
            raise ValueError("a LoRa frame carries at most 255 bytes")
        end = self.air.now_ms + self.get_time_on_air_us(len(packet)) // 1000
        self.sent.append(bytes(packet))
        for addr in self.air.radios:
            link = self.air.links.get((self.addr, addr))
            if link is not None and addr != self.addr:
                self.air.radios[addr].inbox.append(RxPacket(packet, end, link[1], link[0]))
        self.air.now_ms = end
        return end

    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        self.state = "rx"
        if self.inbox:
            return self.inbox.pop(0)
        if timeout_ms:
            self.air.now_ms += timeout_ms
        return None

    def standby(self):
        self.state = "standby"

    def sleep(self):
        self.state = "sleep"
