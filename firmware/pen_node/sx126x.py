"""What micropython-lib's SX126x driver lacks and a low-power node needs:
the DC-DC regulator, channel activity detection (listen before talk) and the
RX duty cycle (a leaf listening a window long enough to latch a preamble,
sleeping the rest; the periods come from pen_node.boardsleep.duty_cycle).

These functions take the driver's modem object (lora.SX1262 /
lora.AsyncSX1262) and speak to the chip through its private `_cmd(fmt,
*args, n_read=0)`, `_get_irq()`, `_standby()` and its low-level
`start_recv()`, the same calls the driver makes; command numbers are from
the SX1261/2 datasheet rev 2.1, section 13 (cited per command). Nothing
here reads a clock: the caller passes sleep_us.

Not yet tried on a board: tests/power/test_sx126x.py checks the exact SPI
bytes against the datasheet's command layouts.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

_CMD_CLR_IRQ_STATUS = const(0x02)  # 13.3.4: IrqMask (2)
_CMD_CFG_DIO_IRQ = const(0x08)  # 13.3.1: IrqMask, Dio1Mask, Dio2Mask, Dio3Mask (2 each)
_CMD_SET_CAD_PARAMS = const(0x88)  # 13.4.7: symbols, detPeak, detMin, exitMode, timeout (3)
_CMD_SET_RX_DUTY_CYCLE = const(0x94)  # 13.1.7: rxPeriod (3), sleepPeriod (3), units 15.625 us
_CMD_SET_REGULATOR_MODE = const(0x96)  # 13.1.11: 0 = LDO only, 1 = DC-DC + LDO
_CMD_SET_CAD = const(0xC5)  # 13.1.10: no arguments

_IRQ_TX_DONE = const(1 << 0)  # table 13-29
IRQ_RX_DONE = const(1 << 1)
IRQ_PREAMBLE_DETECTED = const(1 << 2)
IRQ_HEADER_VALID = const(1 << 4)
_IRQ_CRC_ERR = const(1 << 6)
IRQ_CAD_DONE = const(1 << 7)
IRQ_CAD_DETECTED = const(1 << 8)
_IRQ_TIMEOUT = const(1 << 9)

# the driver's masks (lora-sx126x __init__), kept, plus what we read by polling:
# preamble / header seen (a frame is arriving) and the CAD result; DIO1 stays
# the driver's, so its ISR never sees an IRQ it would not clear
_DRIVER_IRQS = const(IRQ_RX_DONE | _IRQ_TX_DONE | _IRQ_TIMEOUT | _IRQ_CRC_ERR)
_DIO1_IRQS = const(IRQ_RX_DONE | _IRQ_TX_DONE | _IRQ_TIMEOUT)
_ARRIVING = const(IRQ_PREAMBLE_DETECTED | IRQ_HEADER_VALID)
_OUR_IRQS = const(_DRIVER_IRQS | _ARRIVING | IRQ_CAD_DONE | IRQ_CAD_DETECTED)

_CAD_ON_2_SYMB = const(0x01)  # table 13-77: 0x00..0x04 = 1, 2, 4, 8, 16 symbols
CAD_SYMBOLS = const(2)
_CAD_DET_MIN = const(10)  # AN1200.48 table; RadioLib uses detPeak = SF + 13, detMin = 10
_CAD_ONLY = const(0x00)  # exit mode: back to STDBY_RC when done
_CAD_POLLS = const(8)  # a CAD that has not finished after 8 more symbols is a dead chip
_TICK_US_X64 = const(64)  # 15.625 us steps: 64 per ms

_REG_DCDC = const(1)


def prepare(modem):
    """Once after the driver is built: DC-DC regulator (the SX1262's RX
    current halves: 4.6 mA instead of 8.6 mA in LDO mode, DS table 3-7) and
    the IRQ mask that latches what CAD and LBT read."""
    modem._cmd("BB", _CMD_SET_REGULATOR_MODE, _REG_DCDC)
    modem._cmd(">BHHHH", _CMD_CFG_DIO_IRQ, _OUR_IRQS, _DIO1_IRQS, 0, 0)


def cad_params(sf):
    """(symbols code, detPeak, detMin) for a spreading factor (AN1200.48)."""
    return _CAD_ON_2_SYMB, sf + 13, _CAD_DET_MIN


def channel_busy(modem, sf, sym_us, sleep_us):
    """Listen before talk on an SX126x that is receiving continuously.

    A frame already arriving (preamble or header latched, not yet done) is
    busy without touching the chip: a CAD would abort that reception. So is
    a frame received that the driver has not read yet (RxDone latched): its
    IRQ is the driver's to clear, and clearing it for a CAD would lose the
    frame. Else the chip leaves RX for one CAD (2 symbols: 8 ms at
    SF9/BW125) and receives again. CAD misses a frame whose preamble has
    passed and can false-alarm (REFERENCE.md); the mesh's jittered timing
    covers both."""
    flags = modem._get_irq()
    if flags & IRQ_RX_DONE:
        return True
    if flags & _ARRIVING:
        modem._cmd(">BH", _CMD_CLR_IRQ_STATUS, flags & _ARRIVING)  # at most one stale "busy"
        return True
    modem._standby()  # the private one: the driver still believes it is receiving
    sym, peak, dmin = cad_params(sf)
    modem._cmd(">BBBBBBH", _CMD_SET_CAD_PARAMS, sym, peak, dmin, _CAD_ONLY, 0, 0)
    modem._cmd(">BH", _CMD_CLR_IRQ_STATUS, 0xFFFF)
    modem._cmd("B", _CMD_SET_CAD)
    sleep_us((CAD_SYMBOLS + 1) * sym_us)
    flags = modem._get_irq()
    polls = 0
    while not flags & IRQ_CAD_DONE:
        polls += 1
        if polls > _CAD_POLLS:
            raise RuntimeError("SX126x: no CadDone")
        sleep_us(sym_us)
        flags = modem._get_irq()
    modem._cmd(">BH", _CMD_CLR_IRQ_STATUS, 0xFFFF)
    modem.start_recv(None, True, 0xFF)  # continuous RX again, as the driver left it
    return bool(flags & IRQ_CAD_DETECTED)


# The two hooks a board's boot path hands the running node. Built here, not
# in radio.py or boardsleep.py, so that those boot-only modules' globals are
# not kept alive by a closure after boot (main.boot_only lets them go).
def busy_hook(modem, sf, sym_us, sleep_us):
    """MeshNode's channel_busy(now_ms) over channel_busy."""
    return lambda now_ms: channel_busy(modem, sf, sym_us, sleep_us)


def duty_hook(modem, rx_us, sleep_us_):
    """DutyListen's arm() over start_rx_duty_cycle."""
    return lambda: start_rx_duty_cycle(modem, rx_us, sleep_us_)


def duty_registers(rx_us, sleep_us_):
    """SetRxDutyCycle's rxPeriod and sleepPeriod (DS 13.1.7: 24 bits each, in
    15.625 us steps); ValueError if the chip cannot hold them."""
    rx = rx_us * _TICK_US_X64 // 1000
    sl = sleep_us_ * _TICK_US_X64 // 1000
    if not (0 < rx < 1 << 24 and 0 < sl < 1 << 24):
        raise ValueError("RX duty cycle periods out of range")
    return rx, sl


def start_rx_duty_cycle(modem, rx_us, sleep_us_):
    """Receive in duty cycle: listen rx_us, sleep sleep_us_, repeat, until a
    preamble holds the chip in RX (DS 13.1.7). The chip returns to standby
    after a packet; the driver then resumes continuous RX by itself
    (lora.modem _check_recv), which is when a leaf hears its hop's ack; the
    node's loop arms the duty cycle again when that window is over."""
    rx, sl = duty_registers(rx_us, sleep_us_)  # refused before the chip is touched
    modem.start_recv(None, True, 0xFF)  # packet params and the driver's receive state
    modem._standby()
    modem._cmd(">BBHBH", _CMD_SET_RX_DUTY_CYCLE, rx >> 16, rx & 0xFFFF, sl >> 16, sl & 0xFFFF)


# a frame to a leaf goes with the ordinary preamble while the sender knows the
# leaf is listening: it heard the leaf's own frame less than the leaf's window
# ago, less this margin for its own contention and airtime
# (pen_node.preamble.PreambleByDestination: only a node that sends to leaves
# loads it)
LISTEN_MARGIN_MS = const(1500)
