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


def board_power(cfg, board, preset, modem, clock, has_link, figs):
    """NodePower for a board from /pen.json and hardware/power.json (figs):
    "sleep": light-sleep between events (default: yes, except on a bridge,
      which its PC powers); with a link, only if "link_wake_pin" names an
      RTC GPIO wired to the link's RX line (else link bytes would be lost
      while asleep: the UARTs' own RX pins cannot wake the CPU);
    "leaf": this node relays for no one: listen in RX duty cycle (SX126x);
    "relay_rx_duty": a relay listens in RX duty cycle at the preset's own
      preamble: refused (ValueError) when that preamble is too short for a
      receiver that sleeps to catch (sx126x.relay_duty: every preset today);
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
        tcxo = sx126x.tcxo_us(board)
        # the leaves' preamble and duty cycle from one rule (sx126x.duty_cycle), refused here if it cannot sleep
        long_preamble, leaf_dc = sx126x.leaf_duty(preset.sf, preset.bw_hz, leaf["sleep_symbols"], tcxo)
        relay_dc = cfg.get("relay_rx_duty") and sx126x.relay_duty(preset.sf, preset.bw_hz, preset.preamble, tcxo)
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
