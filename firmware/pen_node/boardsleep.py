"""Boot-time wiring of the sleep path on a board (main.run calls it once):
which wake sources, which listening, which preamble, from /pen.json and
hardware/power.json. Its own module so that the loop's pen_node.sleep stays
small on the heap; tested over machine, esp32 and SPI doubles
(tests/power/test_board_power.py)."""

from .sleep import Meter, NodePower, Sleeper, DutyListen


def irq_pin(profile):
    """The GPIO the radio driver's RX/TX-done interrupt arrives on: DIO1 on
    an SX126x, DIO0 on an SX127x (micropython-lib's drivers)."""
    return profile["pins"]["dio1" if profile["radio"] == "sx1262" else "dio0"]


# The SX126x's RX duty cycle rule: here, in the boot-only module, not in
# sx126x.py, so that a running node does not keep it on the heap (the board
# arms sx126x.start_rx_duty_cycle with what duty_cycle gives, once, at boot;
# pen_node.power and the simulator price the same tuple).
TCXO_START_US = 1000  # the TCXO start-up radio.py gives the driver (DS 13.3.6), on boards with one
_TRANSITION_US = 1000  # the chip's own sleep-to-RX time per cycle, beyond the TCXO's


def min_symbols(sf):
    """Preamble symbols the receiver needs to latch a preamble (SX126x DS
    rev 1.2 6.1.1.1): 8 at SF7-12, 12 at SF5-6."""
    return 12 if sf < 7 else 8


def symbol_us(sf, bw_hz):
    return (1000000 << sf) // bw_hz


def leaf_preamble(sf, sleep_symbols):
    """Preamble symbols a sender needs so that a receiver sleeping
    sleep_symbols between windows still catches min_symbols(sf) of it: the
    sleep plus min_symbols on each side (the sender may start just before the
    window closes)."""
    return sleep_symbols + 2 * min_symbols(sf)


def duty_cycle(sf, bw_hz, preamble, tcxo_us=0):
    """The RX duty cycle that catches at least min_symbols(sf) of any
    preamble of `preamble` symbols (the rule RadioLib's SX126x
    startReceiveDutyCycleAuto applies): (rx_us, sleep_us, transition_us),
    where rx_us and sleep_us are what SetRxDutyCycle is given and the chip
    spends transition_us (TCXO start plus 1 ms) waking from each sleep; None
    when such a preamble leaves no time to sleep (shorter than
    2 x min_symbols + 1, or a sleep no longer than the transition): the
    receiver must then listen all the time.
    The sleep is the preamble less min_symbols on each side; the window is
    long enough to see min_symbols + 1, and to keep the chip in RX (its
    preamble timer runs sleep + 2 x window) until the preamble is over."""
    m = min_symbols(sf)
    sym = symbol_us(sf, bw_hz)
    if preamble < 2 * m + 1:
        return None
    sleep = sym * (preamble - 2 * m)
    trans = tcxo_us + _TRANSITION_US
    if sleep < trans + 16:
        return None
    rx = max((sym * (preamble + 1) - (sleep - _TRANSITION_US)) // 2, sym * (m + 1))
    return rx, sleep - trans, trans


def tcxo_us(board):
    """The TCXO start each wake costs on a board profile (hardware/boards)."""
    return TCXO_START_US if board.get("tcxo_mv") else 0


def leaf_duty(sf, bw_hz, sleep_symbols, tcxo_us_=0):
    """(preamble toward the leaf, duty_cycle) of a leaf sleeping
    sleep_symbols between windows; ValueError if that is no sleep."""
    p = leaf_preamble(sf, sleep_symbols)
    d = duty_cycle(sf, bw_hz, p, tcxo_us_)
    if d is None:
        raise ValueError("leaf_rx: %d sleep symbols at SF%d is shorter than a wake" % (sleep_symbols, sf))
    return p, d


def relay_duty(sf, bw_hz, preamble, tcxo_us_=0):
    """duty_cycle of a relay at the preset's own preamble; ValueError if
    that preamble cannot be caught by a receiver that sleeps."""
    d = duty_cycle(sf, bw_hz, preamble, tcxo_us_)
    if d is None:
        raise ValueError("relay_rx_duty: a %d-symbol preamble at SF%d leaves no sleep (the chip needs %d "
                         "symbols of it awake, so more than %d)" % (preamble, sf, min_symbols(sf),
                                                                   2 * min_symbols(sf)))
    return d


def board_power(cfg, board, preset, modem, clock, has_link, figs):
    """NodePower for a board from /pen.json and hardware/power.json (figs):
    "sleep": light-sleep between events (default: yes, except on a bridge,
      which its PC powers); with a link, only if "link_wake_pin" names an
      RTC GPIO wired to the link's RX line (else link bytes would be lost
      while asleep: the UARTs' own RX pins cannot wake the CPU);
    "leaf": this node relays for no one: listen in RX duty cycle (SX126x);
    "relay_rx_duty": a relay listens in RX duty cycle at the preset's own
      preamble: refused (ValueError) when that preamble is too short for a
      receiver that sleeps to catch (relay_duty: every preset today);
    "sleepy": addresses of leaves, sent to with the long preamble;
    "tx_power_control": unicast frames at the lowest power with a margin over
      the link (pen_node.txpower; off by default: docs/power.md).
    A board whose radio IRQ is not on an RTC GPIO stays awake, and says so."""
    import machine
    import esp32
    import time
    meter = Meter()
    power = NodePower(meter, min(preset.power_dbm, board.get("max_power_dbm", preset.power_dbm)))
    leaf = figs["leaf_rx"]
    sx = board["radio"] == "sx1262"
    if sx:
        from . import sx126x
        tcxo = tcxo_us(board)
        # the leaves' preamble and duty cycle from one rule (duty_cycle), refused here if it cannot sleep
        long_preamble, leaf_dc = leaf_duty(preset.sf, preset.bw_hz, leaf["sleep_symbols"], tcxo)
        relay_dc = cfg.get("relay_rx_duty") and relay_duty(preset.sf, preset.bw_hz, preset.preamble, tcxo)
        sx126x.prepare(modem)
        if cfg.get("sleepy"):
            from .preamble import PreambleByDestination
            power.preamble = PreambleByDestination(
                modem, preset.preamble, long_preamble, set(cfg["sleepy"]), leaf["listen_after_tx_ms"])
    if cfg.get("tx_power_control"):
        from .txpower import TxPower, cap
        steps = [int(k) for k in figs["radios"][board["radio"]]["tx_ma"]]
        # the preset's power is its sub-band's cap (hardware/regions.json); the key comes with the node
        power.txpower = TxPower(preset.sf, steps, cap(preset.power_dbm, steps, board.get("max_power_dbm")))
        power.modem = modem
    rtc = figs["mcus"][board["mcu"]]["rtc_gpios"]
    link_pin = cfg.get("link_wake_pin")
    if link_pin is not None and link_pin not in rtc:
        raise ValueError("link_wake_pin %d cannot wake a %s (not an RTC GPIO)" % (link_pin, board["mcu"]))
    if not cfg.get("sleep", not cfg.get("bridge", False)) or (has_link and link_pin is None):
        return power
    irq = irq_pin(board)
    if irq not in rtc:
        print("pen: no light sleep: the radio IRQ on GPIO%d cannot wake a %s" % (irq, board["mcu"]))
        return power
    pin = machine.Pin(irq, machine.Pin.IN)
    power.sleeper = Sleeper(machine, esp32, clock, pin, modem._radio_isr, meter, time.sleep_ms,
                            None if link_pin is None else machine.Pin(link_pin, machine.Pin.IN),
                            figs["firmware"]["min_sleep_ms"])
    power.leaf = bool(cfg.get("leaf"))
    duty = leaf if power.leaf else figs["relay_rx"] if cfg.get("relay_rx_duty") else None
    if duty is not None and sx:
        meter.duty = dc = leaf_dc if power.leaf else relay_dc
        power.listen = DutyListen(sx126x.duty_hook(modem, dc[0], dc[1]), meter, duty["listen_after_tx_ms"], clock())
    return power
