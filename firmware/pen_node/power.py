"""Power model: average current from the time each part spends in each state.

The firmware counts the states as it goes (sleep.Meter: radio TX by power
level, RX, RX in duty cycle, sleep; MCU active, idle, light sleep); Budget prices
them with one board's figures from hardware/power.json (on a board
/hardware/power.json), which the simulator and `pen power` read too. So the
modelled current follows what the node's loop really did: a board that never
sleeps is charged its awake MCU current, not a light-sleep figure.

average = (sum over states of time x current) / elapsed + board overheads
"""

import json

DEFAULT_BOARD = "heltec-v3"
_BOARD_HW = "/hardware"  # where package.json installs hardware/ on a board

# the Meter (what the node's loop did) lives with the loop that fills it, so a
# board that only counts does not load the pricing below
from .sleep import Meter, R_RX, R_RXDC, R_SLEEP, M_ACTIVE, M_SLEEP  # noqa: F401
from .boardsleep import irq_pin, tcxo_us, leaf_duty, relay_duty


def hardware_dir():
    """hardware/: on a board at /hardware, in a checkout next to firmware/,
    in an installed wheel as the data of the pen package (pen/hardware,
    beside pen_node in site-packages)."""
    import os
    here = __file__.rsplit("/", 1)[0]
    for d in (_BOARD_HW, here + "/../../hardware", here + "/../pen/hardware"):
        try:
            os.stat(d + "/power.json")
            return d
        except OSError:
            pass
    return _BOARD_HW  # load_budget then names the board it cannot find


def _load(path):
    with open(path) as f:
        return json.load(f)


def load_budget(board=DEFAULT_BOARD, hw=None):
    """The Budget of a board from hardware/power.json and its profile
    hardware/boards/<board>.json (which names its radio and MCU)."""
    hw = hw or hardware_dir()
    try:
        profile = _load(hw + "/boards/" + board + ".json")
    except OSError:
        raise ValueError("unknown board " + str(board))
    return Budget(_load(hw + "/power.json"), profile)


class Budget:
    """One board's figures (hardware/power.json) and the prices of the states."""

    def __init__(self, figs, profile):
        board = profile["id"]
        if board not in figs["boards"]:
            raise ValueError("no power figures for board " + str(board))
        b = figs["boards"][board]
        self.board = board
        self.radio_name = profile["radio"]
        self.mcu_name = profile["mcu"]
        self.radio = figs["radios"][self.radio_name]
        self.mcu = figs["mcus"][self.mcu_name]
        # light sleep needs the radio's RX-done line on a pin that can wake the MCU (pen_node/sleep.py)
        self.can_sleep = irq_pin(profile) in self.mcu["rtc_gpios"]
        self.fw = figs["firmware"]
        self.leaf = figs["leaf_rx"]
        self.relay_rx = figs["relay_rx"]
        self.tcxo_us = tcxo_us(profile)
        self.overhead_ma = b["regulator_iq_ma"] + b["vext_ma"] + b["always_ma"]
        self.battery_mah = b["battery_mah"]
        self.battery_v = b["battery_v"]
        self.solar = figs["solar"]
        self._tx = sorted((int(k), v) for k, v in self.radio["tx_ma"].items())

    PARTS = ("radio_tx", "radio_rx", "radio_rx_duty_cycle", "radio_sleep", "mcu_active", "mcu_idle",
             "mcu_light_sleep", "board")

    def tx_ma(self, dbm):
        """The chip's current at the lowest table step at or above dbm (the PA
        is set to at most its top step)."""
        for p, ma in self._tx:
            if dbm <= p:
                return ma
        return self._tx[-1][1]

    def tx_steps(self):
        """The output powers (dBm) the board's figures price."""
        return [p for p, _ in self._tx]

    def top_dbm(self):
        """The radio's highest output power (a preset may allow more: 27 dBm
        in EU868's 869.4-869.65 MHz sub-band; an SX1262 gives 22)."""
        return self._tx[-1][0]

    def leaf_duty(self, sf, bw_hz):
        """(preamble toward a leaf, its duty cycle) at a preset's SF and
        bandwidth, from leaf_rx's sleep (pen_node.boardsleep.leaf_duty, as the
        board arms it)."""
        return leaf_duty(sf, bw_hz, self.leaf["sleep_symbols"], self.tcxo_us)

    def relay_duty(self, preset):
        """A relay's duty cycle at the preset's own preamble, or ValueError."""
        return relay_duty(preset.sf, preset.bw_hz, preset.preamble, self.tcxo_us)

    def rx_duty_ma(self, duty):
        """Average radio current in RX duty cycle (DS 13.1.7): duty is
        boardsleep.duty_cycle's (rx_us, sleep_us, transition_us): RX current in the
        window, standby while waking (TCXO and the chip's start), sleep the rest."""
        if duty is None:
            raise ValueError("time in RX duty cycle with no duty cycle to price it")
        rx, sl, tr = duty
        r = self.radio
        return (rx * r["rx_ma"] + tr * r["standby_ma"] + sl * r["sleep_ua"] / 1000) / (rx + sl + tr)

    def parts(self, m, elapsed_ms):
        """Average mA of each part over elapsed_ms: (radio TX, radio RX,
        radio RX duty cycle, radio sleep, MCU active, MCU idle, MCU light
        sleep, board overheads). Their sum is the node's current."""
        if elapsed_ms <= 0:
            return (0.0,) * 8
        ms = m.ms
        tx = m.tx_total()
        rx = max(0, elapsed_ms - tx - ms[R_RXDC] - ms[R_SLEEP])
        idle = max(0, elapsed_ms - ms[M_ACTIVE] - ms[M_SLEEP])
        e = elapsed_ms
        return (sum(t * self.tx_ma(p) for p, t in m.tx_ms.items()) / e,
                rx * self.radio["rx_ma"] / e,
                ms[R_RXDC] and ms[R_RXDC] * self.rx_duty_ma(m.duty) / e,
                ms[R_SLEEP] * self.radio["sleep_ua"] / 1000 / e,
                ms[M_ACTIVE] * self.mcu["active_ma"] / e,
                idle * self.mcu["idle_ma"] / e,
                ms[M_SLEEP] * self.mcu["light_sleep_ma"] / e,
                self.overhead_ma)

    def average_ma(self, m, elapsed_ms):
        return sum(self.parts(m, elapsed_ms))

    def sleeping_meter(self, elapsed_ms, tx_ms_by_dbm, frames, wakes, rxdc_ms=0, duty=None):
        """The Meter of a node whose loop light-sleeps between events: active
        for each frame handled and each wake, asleep the rest (what
        pen_node/sleep.py does on a board; the simulator and `pen power` use it)."""
        m = Meter()
        for p, t in tx_ms_by_dbm.items():
            m.tx(p, t)
        active = frames * self.fw["frame_active_ms"] + wakes * self.fw["wake_active_ms"]
        active = min(active, elapsed_ms)
        m.add(M_ACTIVE, active)
        m.add(M_SLEEP, elapsed_ms - active)
        m.add(R_RXDC, min(rxdc_ms, elapsed_ms - m.tx_total()))
        m.frames, m.wakes, m.duty = frames, wakes, duty
        return m

_default = None


def default_budget():
    global _default
    if _default is None:
        _default = load_budget()
    return _default


def average_ma(tx_us, frames, elapsed_ms, power_dbm=14, wakes=None):
    """Average current of a relay on the default board that listens all the
    time and light-sleeps its MCU between frames (MeshNode.average_current_ma
    and the simulator's nodes call this). Without a wake count, every frame
    handled and every frame sent is taken as one wake."""
    if elapsed_ms <= 0:
        return 0.0
    b = default_budget()
    tx_ms = tx_us // 1000
    m = b.sleeping_meter(elapsed_ms, {power_dbm: tx_ms}, frames, frames if wakes is None else wakes)
    return b.average_ma(m, elapsed_ms)
