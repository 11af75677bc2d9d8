"""An SX126x on the far side of an SPI bus, for tests on both runtimes: it
records every command's bytes and answers GetIrqStatus (0x12) from a script.
ModemDouble issues commands exactly as micropython-lib's lora-sx126x does
(struct-packed into one buffer, one write_readinto per command with chip
select around it), so the bytes recorded are the bytes a board would send."""
import struct

GET_IRQ = 0x12


class SpiDouble:
    def __init__(self, irq_script=()):
        self.log = []  # hex of each command as written
        self.irqs = list(irq_script)  # flags returned by successive GetIrqStatus
        self.selected = False

    def write_readinto(self, wbuf, rbuf):
        assert self.selected, "SPI transfer without chip select"
        self.log.append(bytes(wbuf[:self.wlen]).hex())
        if wbuf[0] == GET_IRQ:
            flags = self.irqs.pop(0) if self.irqs else 0
            rbuf[1] = 0x22  # status: STDBY_RC, no error
            rbuf[2] = flags >> 8
            rbuf[3] = flags & 0xFF


class CsPin:
    def __init__(self, spi):
        self.spi = spi

    def __call__(self, v):
        self.spi.selected = not v


class ModemDouble:
    """The parts of lora.SX1262 that pen_node.sx126x calls."""

    def __init__(self, spi, preamble=8):
        self._spi = spi
        self._cs = CsPin(spi)
        self._buf = bytearray(9)
        self._preamble_len = preamble
        self.configured = []

    def _cmd(self, fmt, *args, n_read=0):
        wrlen = struct.calcsize(fmt)
        assert wrlen + n_read <= len(self._buf)
        struct.pack_into(fmt, self._buf, 0, *args)
        self._spi.wlen = wrlen
        buf = memoryview(self._buf)[:wrlen + n_read]
        self._cs(0)
        self._spi.write_readinto(buf, buf)
        self._cs(1)
        if n_read:
            return buf[wrlen:]

    def _get_irq(self):
        r = self._cmd("B", GET_IRQ, n_read=3)
        return (r[1] << 8) | r[2]

    def _standby(self):
        self._cmd("BB", 0x80, 1)  # STDBY_XOSC
        self._cmd(">BH", 0x02, 0xFFFF)

    def start_recv(self, timeout_ms=None, continuous=False, rx_length=0xFF):
        self._standby()
        self._cmd("BBB", 0x8F, 0xFF, 0x00)
        self._cmd(">BHBBBB", 0x8C, self._preamble_len, 0, rx_length, 1, 0)
        self._cmd(">BBH", 0x82, 0xFF, 0xFFFF)  # continuous

    def configure(self, cfg):
        self.configured.append(cfg)
        self._preamble_len = cfg.get("preamble_len", self._preamble_len)
