"""Custody journal: what this node has accepted and not yet handed on.

A node acks a frame only after the record is in this journal, and deletes it
only when the next hop has acked it, so a payment acknowledged once is never
lost, across reboots and power cuts.

Layout: the storage is split into two equal regions. The active region holds
a header (magic, generation, CRC) and then an append-only log of entries:

    0xA5 | kind (1) | length (2, BE) | payload | CRC-32 over kind..payload (4)

kind PUT carries meta (1) | record id (16) | record; kind DEL carries a
record id. The CRC also covers the region's generation, so entries left
behind by an older use of a region can never be read as current. Recovery reads the region with the valid header of the highest
generation and replays entries up to the first that is torn or corrupt (a
power cut mid-append loses only the entry being written, which was never
acknowledged). When the region fills, the live entries are copied to the
other region under generation + 1, synced, and only then does its header make
it current: a cut during compaction leaves the old region in force.

Bounded: at most MAX_LIVE records and half a region of live bytes, so a
compaction always fits. Beyond that put() refuses new work (the sender keeps
custody and retries elsewhere or later) rather than dropping anything already
acknowledged.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

import binascii

_MAGIC = const(0xA5)
_HDR_MAGIC = b"PENJ"
_HDR_LEN = const(12)  # magic 4 | generation 4 | crc32 of the 8 before 4
_ENT_OVERHEAD = const(8)  # magic, kind, length 2, crc 4
PUT = const(1)
DEL = const(2)
ID_LEN = const(16)
# 48 records in custody is hours of a busy village's payments for one relay;
# it bounds RAM (the index keeps records, ~100 B each) as well as flash.
MAX_LIVE = const(48)


class FileStorage:
    """Storage on a board's flash filesystem (littlefs on ESP32): one file
    of fixed size, opened read/write. littlefs makes each write atomic per
    file block; the journal's own CRCs cover torn appends regardless."""

    def __init__(self, path, size):
        self.size = size
        try:
            self.f = open(path, "r+b")
        except OSError:
            self.f = open(path, "w+b")
        # a new file, or one left shorter (a cut while it was being made, or
        # a smaller size before): pad to size with the erased-flash pattern,
        # in small pieces (RAM is scarce), so every read returns what it asks
        have = self.f.seek(0, 2)
        if have < size:
            blank = b"\xff" * 256
            while have < size:
                n = min(256, size - have)
                self.f.write(blank[:n])
                have += n
            self.f.flush()

    def read(self, off, n):
        self.f.seek(off)
        return self.f.read(n)

    def write(self, off, data):
        self.f.seek(off)
        self.f.write(data)

    def sync(self):
        self.f.flush()


def _crc(data):
    return binascii.crc32(data) & 0xFFFFFFFF


def _u32(b, i):
    return (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]


def _be32(n):
    return bytes(((n >> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255))


class JournalFull(Exception):
    pass


class Journal:
    def __init__(self, storage, max_live=MAX_LIVE):
        self.st = storage
        self.region = storage.size // 2
        self.max_live = max_live
        self.live = {}  # record id -> (meta, record)
        self.gen = 0
        self.base = 0  # offset of the active region
        self.end = 0  # append position (absolute)
        self.recover()

    # -- recovery -------------------------------------------------------------

    def _header_gen(self, base):
        h = self.st.read(base, _HDR_LEN)
        if len(h) < _HDR_LEN or h[:4] != _HDR_MAGIC or _crc(h[:8]) != _u32(h, 8):
            return -1
        return _u32(h, 4)

    def recover(self):
        """Rebuild the index from storage. Returns the live records."""
        g0 = self._header_gen(0)
        g1 = self._header_gen(self.region)
        if g0 < 0 and g1 < 0:
            self.gen = 1
            self.base = 0
            self._write_header(0, 1)
            self.end = _HDR_LEN
            self.live = {}
            return self.live
        if g1 > g0:
            self.gen, self.base = g1, self.region
        else:
            self.gen, self.base = g0, 0
        self.live = {}
        pos = self.base + _HDR_LEN
        limit = self.base + self.region
        while pos + _ENT_OVERHEAD <= limit:
            head = self.st.read(pos, 4)
            if len(head) < 4 or head[0] != _MAGIC:
                break
            n = (head[2] << 8) | head[3]
            if pos + _ENT_OVERHEAD + n > limit:
                break
            rest = self.st.read(pos + 4, n + 4)
            if len(rest) < n + 4 or _crc(_be32(self.gen) + head[1:4] + rest[:n]) != _u32(rest, n):
                break
            self._apply(head[1], rest[:n])
            pos += _ENT_OVERHEAD + n
        self.end = pos
        return self.live

    def _apply(self, kind, payload):
        if kind == PUT:
            self.live[bytes(payload[1:1 + ID_LEN])] = (payload[0], bytes(payload[1 + ID_LEN:]))
        elif kind == DEL:
            self.live.pop(bytes(payload[:ID_LEN]), None)

    def _write_header(self, base, gen):
        h = _HDR_MAGIC + _be32(gen)
        self.st.write(base, h + _be32(_crc(h)))
        self.st.sync()

    # -- writing ----------------------------------------------------------------

    def live_bytes(self):
        n = 0
        for rid in self.live:
            n += _ENT_OVERHEAD + 1 + ID_LEN + len(self.live[rid][1])
        return n

    def can_take(self, record_len):
        need = _ENT_OVERHEAD + 1 + ID_LEN + record_len
        return len(self.live) < self.max_live and self.live_bytes() + need <= (self.region - _HDR_LEN) // 2

    def put(self, rid, record, meta=0):
        """Durably keep record; False if the journal is full (nothing written).
        Putting an id already held is a no-op (True)."""
        if rid in self.live:
            return True
        if not self.can_take(len(record)):
            return False
        record = bytes(record)
        self._append(PUT, (bytes((meta,)), rid, record))
        self.live[rid] = (meta, record)
        return True

    def delete(self, rid):
        if rid not in self.live:
            return
        self._append(DEL, (rid,))
        del self.live[rid]

    def _append(self, kind, parts):
        n = 0
        for p in parts:
            n += len(p)
        if self.end + _ENT_OVERHEAD + n > self.base + self.region:
            self._compact()
        entry = self._entry(kind, parts, self.gen)
        self.st.write(self.end, entry)
        self.st.sync()
        self.end += len(entry)

    @staticmethod
    def _entry(kind, parts, gen):
        """magic | kind | length (2) | payload (the parts) | CRC-32 of gen,
        kind, length and payload, in one buffer: on a 64 KB heap the four
        concatenations this took before left holes a bundle frame could not
        fit in (the node loop failed for some journal path lengths)."""
        n = 0
        for p in parts:
            n += len(p)
        out = bytearray(_ENT_OVERHEAD + n)
        out[0] = _MAGIC
        out[1] = kind
        out[2] = n >> 8
        out[3] = n & 255
        i = 4
        for p in parts:
            out[i:i + len(p)] = p
            i += len(p)
        crc = binascii.crc32(memoryview(out)[1:i], binascii.crc32(_be32(gen)))
        out[i:] = _be32(crc & 0xFFFFFFFF)
        return out

    def _compact(self):
        other = self.region - self.base
        pos = other + _HDR_LEN
        # invalidate the target region's header first, then fill it
        self.st.write(other, b"\x00" * _HDR_LEN)
        for rid in self.live:
            meta, rec = self.live[rid]
            entry = self._entry(PUT, (bytes((meta,)), rid, rec), self.gen + 1)
            self.st.write(pos, entry)
            pos += len(entry)
        self.st.sync()
        self._write_header(other, self.gen + 1)
        self.gen += 1
        self.base = other
        self.end = pos
