"""LoRa time on air, Semtech's formula (SX1276 datasheet section 4.1.1.7;
SX1261/2 datasheet section 6.1.4), in integer microseconds so it runs the
same on a board and on a PC.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

MAX_FRAME = const(255)  # a LoRa frame carries at most 255 bytes


def symbol_us(sf, bw_hz):
    return ((1 << sf) * 1000000) // bw_hz


def time_on_air_us(plen, sf, bw_hz, cr=5, preamble=8, crc=True, implicit=False, ldro=None):
    """Time on air of a plen-byte frame. cr is the coding-rate denominator
    (5..8 for 4/5..4/8). Low data rate optimisation (DE) is on when a symbol
    lasts more than 16 ms, as the datasheets require, unless forced."""
    tsym = symbol_us(sf, bw_hz)
    de = (tsym > 16000) if ldro is None else bool(ldro)
    num = 8 * plen - 4 * sf + 28 + (16 if crc else 0) - (20 if implicit else 0)
    den = 4 * (sf - (2 if de else 0))
    n = 0
    if num > 0:
        n = (num + den - 1) // den * cr
    symbols4 = (preamble * 4 + 17) + 4 * (8 + n)  # preamble + 4.25 symbols, in quarters
    return symbols4 * tsym // 4


class Preset:
    """A named radio setting: modulation plus the sub-band it must live on."""

    def __init__(self, name, sf, bw_hz, cr, preamble, freq_khz, duty_permille, dwell_ms=0, power_dbm=14):
        self.name = name
        self.sf = sf
        self.bw_hz = bw_hz
        self.cr = cr
        self.preamble = preamble
        self.freq_khz = freq_khz
        self.duty_permille = duty_permille  # 0 = no duty-cycle limit
        self.dwell_ms = dwell_ms  # 0 = no dwell limit
        self.power_dbm = power_dbm

    def airtime_us(self, plen):
        return time_on_air_us(plen, self.sf, self.bw_hz, self.cr, self.preamble)

    def max_frame(self):
        """Longest frame the law allows in one transmission (dwell time)."""
        if not self.dwell_ms:
            return MAX_FRAME
        n = MAX_FRAME
        while n > 0 and self.airtime_us(n) > self.dwell_ms * 1000:
            n -= 1
        return n


# The 869.4-869.65 MHz sub-band allows 10 % and 27 dBm (what Meshtastic uses in
# Europe); 868.0-868.6 MHz allows 1 %. US915 narrow channels: 400 ms dwell.
PRESETS = {
    "eu868-sf9": Preset("eu868-sf9", 9, 125000, 5, 8, 869525, 100, 0, 27),
    "eu868-sf9-1pct": Preset("eu868-sf9-1pct", 9, 125000, 5, 8, 868100, 10, 0, 14),
    # SF9 at 125 kHz cannot carry a 96-byte payment within the 400 ms dwell
    # limit (533 ms); at 250 kHz it takes 266 ms, and frames up to 155 bytes fit.
    "us915-sf9": Preset("us915-sf9", 9, 250000, 5, 8, 903900, 0, 400, 20),
    # Meshtastic LongFast: SF11 / BW250 / CR4-5 / preamble 16
    "eu868-longfast": Preset("eu868-longfast", 11, 250000, 5, 16, 869525, 100, 0, 27),
    "us915-longfast": Preset("us915-longfast", 11, 250000, 5, 16, 906875, 0, 400, 20),
}
