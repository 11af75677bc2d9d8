"""Journal storage in RAM with power-cut injection, for the tests and the
simulator (a board's journal is a file: journal.FileStorage). Its own module
so a node never loads it: on a 64 KB heap every class counts."""


class PowerCut(Exception):
    """Raised by the test storage when power is cut mid-write."""


class MemStorage:
    """Storage in RAM with power-cut injection, for tests and the simulator.
    cut_after: number of bytes that may still be written before the power
    fails (None = never); the write in progress keeps only its first bytes."""

    def __init__(self, size, cut_after=None):
        self.size = size
        # erased-flash pattern, filled in place: one allocation of `size`
        # (a 64 KB heap may not have room for a temporary of the same size)
        self.buf = bytearray(size)
        ff = b"\xff" * 64
        mv = memoryview(self.buf)
        for i in range(0, size, 64):
            n = min(64, size - i)
            mv[i:i + n] = ff[:n]
        self.cut_after = cut_after
        self.writes = 0

    def read(self, off, n):
        return bytes(self.buf[off:off + n])

    def write(self, off, data):
        if self.cut_after is not None:
            if len(data) > self.cut_after:
                k = self.cut_after
                self.buf[off:off + k] = data[:k]
                self.cut_after = 0
                raise PowerCut()
            self.cut_after -= len(data)
        self.buf[off:off + len(data)] = data
        self.writes += 1

    def sync(self):
        pass
