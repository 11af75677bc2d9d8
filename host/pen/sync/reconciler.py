"""Sans-IO set reconciliation between two replicas (docs/sync.md).

One Reconciler per side. The initiator calls start() and sends the bytes;
from then on each side passes every received message to receive(), which
returns the reply to send, or None when there is nothing more to send. When
`done` is true, result() gives (ids_we_lack, ids_they_lack). Messages are
whole byte strings: framing is the transport's business (an HTTP body each).
The initiator always speaks first and the responder always answers, so a
client-server transport maps every initiator message to one request.

    initiator                          responder
    HELLO n, symbols 0..p     ->       (symbol 0 is the fingerprint)
                              <-       IDENTICAL                  (same set: done)
                              <-       RESULT                     (p symbols decoded it: done)
                              <-       ESTIMATE n, fingerprint, sketch
    SYMBOLS p..m              ->       (decodes the difference)
                              <-       RESULT ids each side lacks  (done)
                              <-       MORE c   -> SYMBOLS m..m+c  (rare)
                              <-       FALLBACK -> LIST mode       (very rare)
    LIST bucket b, my ids     ->       (big differences, an empty side)
                              <-       LIST_REPLY b, bitmap of ids I lack, ids you lack

Any bad message raises SyncError with a reason code, leaves the reconciler
in state "failed" and makes no change to the index; the transport drops the
session. Every count a peer sends is checked against a named limit before
anything is allocated for it.
"""
import math

import numpy as np

from . import estimate, messages as M, riblt
from .errors import SyncError
from .index import arrays_to_bytes, ids_to_arrays, member, strictly_sorted

# Symbols one sync may use in all: about 180 000 differences. Past that an id
# list costs less than twice the symbols anyway for any set under ~6 M ids, and
# the decoder's Python state (~150 B a cell) stays under 40 MB.
MAX_SYMBOLS = 1 << 18
# Symbols in one message: all of them (5.2 MB, under MAX_MESSAGE_BYTES), so
# even a 100 000-id difference goes in one batch and two round trips; past
# the cached prefix each batch costs both sides a pass over every id.
MAX_BATCH_SYMBOLS = MAX_SYMBOLS
# A peer claiming more ids than this is refused: it sizes the list buckets.
MAX_PEER_SET = 1 << 30
# Ids one sync may report: 16 M ids = 256 MB of result, the memory bound a
# hostile peer can push us to with well-formed messages.
MAX_DIFFERENCES = 1 << 24
# List mode: ids of one side per bucket (1 MB a message, 16 round trips for
# a million ids) ...
LIST_TARGET_IDS = 1 << 16
# ... and the most a bucket may hold: buckets are chosen so the mean is at most
# LIST_TARGET_IDS and ids are uniform hashes, so 4x the mean never happens
# honestly (it is > 100 standard deviations away).
MAX_BUCKET_IDS = 4 * LIST_TARGET_IDS
# First batch = FIRST_BATCH_FACTOR * estimate + FIRST_BATCH_EXTRA symbols.
# Decoding needs ~1.38 symbols a difference at k=1000 (1.43 at the 90th
# percentile) and the estimate is within +-6.25 % (1 sd): 1.55 made one batch
# enough in 60 of 60 seeded runs and costs 2.78x the floor on average (1.45:
# 2.67x but a third round trip in 12 %); docs/sync.md has the table. The
# extra covers small k, where the overhead per difference is larger.
FIRST_BATCH_FACTOR = 1.55
FIRST_BATCH_EXTRA = 8
# A MORE asks for MORE_FRACTION of what was sent, at least MIN_MORE symbols:
# a short first batch is usually short by a few percent.
MIN_MORE = 8
MORE_FRACTION = 0.15
# Cost model for choosing symbols or lists: symbols per difference, plus the
# 16-byte id each difference costs in the RESULT.
SYMBOLS_PER_DIFFERENCE = 1.45

_FP_BYTES = riblt.SYMBOL_BYTES
# Symbols the HELLO carries. Symbol 0 is the fingerprint that detects equal
# sets, and alone it decodes a single difference, so the frequent "one record
# since last time" sync takes one round trip of ~60 B. Each further symbol
# (20 B) makes one round trip likelier for 2-5 differences (4 symbols decode
# 2 differences ~3 times in 4), at the price of identical sets costing more
# than ~30 B. The transport may pass another probe.
PROBE_SYMBOLS = 1
# The most a HELLO may carry (a peer's choice; 1.3 KB).
MAX_PROBE_SYMBOLS = 64


def list_bits(n_a, n_b):
    """Buckets for list mode: 2**bits, so the bigger side has at most
    LIST_TARGET_IDS ids per bucket on average. Both sides compute it."""
    big = max(n_a, n_b)
    bits = 0
    while (big >> bits) > LIST_TARGET_IDS:
        bits += 1
    return bits


def _in_bucket(hi, bits, bucket):
    if bits == 0:
        return True
    return bool(np.all((hi >> np.uint64(64 - bits)) == np.uint64(bucket)))


def _ids_field(raw, limit, what):
    if len(raw) % 16:
        raise SyncError("malformed", "%s: not a whole number of ids" % what)
    if len(raw) // 16 > limit:
        raise SyncError("out-of-range", "%s: %d ids, limit %d" % (what, len(raw) // 16, limit))
    hi, lo = ids_to_arrays([raw]) if raw else (np.zeros(0, np.uint64), np.zeros(0, np.uint64))
    if not strictly_sorted(hi, lo):
        raise SyncError("malformed", "%s: ids not strictly ascending" % what)
    return hi, lo


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def _sorted_pair(hi, lo):
    order = np.lexsort((lo, hi))
    return hi[order], lo[order]


class Reconciler:
    """One side of one sync. `index` is a pen.sync.index.SetIndex; the
    reconciler works on a snapshot, so ids added during the sync count in the
    next one."""

    def __init__(self, index, initiator, probe=PROBE_SYMBOLS):
        if not 1 <= probe <= MAX_PROBE_SYMBOLS:
            raise ValueError("probe must be 1..%d symbols" % MAX_PROBE_SYMBOLS)
        self.probe = probe
        self.index = index.snapshot()
        self.initiator = bool(initiator)
        self.state = "start" if initiator else "wait-hello"
        self.mode = None  # "identical" | "symbols" | "list"
        self.n = len(self.index)
        self.n_peer = None
        self.fp_peer = None
        self.estimate = None  # initiator: estimated difference size
        self.symbols = 0  # symbols sent (initiator) or received (responder)
        self.sent_bytes = self.received_bytes = 0
        self.sent_messages = self.received_messages = 0
        self._we_lack = []  # (hi, lo) array pairs
        self._they_lack = []
        self._differences = 0
        self._decoder = None
        self._bits = 0
        self._bucket = 0
        self._chunk = None
        self._list_received = 0

    # -- the I/O boundary ------------------------------------------------

    @property
    def done(self):
        return self.state == "done"

    def start(self):
        """Initiator: the first message."""
        if not self.initiator or self.state != "start":
            raise SyncError("unexpected", "start() is for a new initiator")
        self.state = "wait-estimate"
        self.symbols = self.probe
        return self._send(M.encode(M.HELLO, M.VERSION, self.n, self.index.symbols_bytes(0, self.probe)))

    def receive(self, data):
        """Feed one whole message from the peer; returns the reply (bytes) or
        None when this side has nothing more to send."""
        if self.state == "failed":
            raise SyncError("failed", "this reconciler already failed")
        self.received_messages += 1
        self.received_bytes += len(data) if isinstance(data, (bytes, bytearray, memoryview)) else 0
        try:
            kind, items = M.parse(data)
            handler = _HANDLERS.get((self.state, kind))
            if handler is None:
                raise SyncError("unexpected", "%s while %s" % (M.NAMES[kind], self.state))
            reply = handler(self, *items)
        except SyncError:
            self.state = "failed"
            raise
        return None if reply is None else self._send(reply)

    def result(self):
        """(ids_we_lack, ids_they_lack): sorted lists of 16-byte ids."""
        if not self.done:
            raise SyncError("unexpected", "result() before the sync is done")
        return self._ids(self._we_lack), self._ids(self._they_lack)

    def _send(self, msg):
        self.sent_messages += 1
        self.sent_bytes += len(msg)
        return msg

    @staticmethod
    def _ids(parts):
        if not parts:
            return []
        hi, lo = _sorted_pair(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        raw = arrays_to_bytes(hi, lo)
        return [raw[i:i + 16] for i in range(0, len(raw), 16)]

    def _record(self, we_lack, they_lack):
        self._differences += len(we_lack[0]) + len(they_lack[0])
        if self._differences > MAX_DIFFERENCES:
            raise SyncError("limit", "more than %d differences" % MAX_DIFFERENCES)
        self._we_lack.append(we_lack)
        self._they_lack.append(they_lack)

    def _peer_set(self, n, fp):
        if n > MAX_PEER_SET:
            raise SyncError("out-of-range", "peer set of %d ids, limit %d" % (n, MAX_PEER_SET))
        if len(fp) != _FP_BYTES:
            raise SyncError("malformed", "fingerprint of %d bytes" % len(fp))
        self.n_peer, self.fp_peer = n, fp

    # -- responder -------------------------------------------------------

    def _on_hello(self, version, n, probe):
        if version != M.VERSION:
            raise SyncError("version", "peer speaks version %d, we speak %d" % (version, M.VERSION))
        count, rest = divmod(len(probe), riblt.SYMBOL_BYTES)
        if rest or not 1 <= count <= MAX_PROBE_SYMBOLS:
            raise SyncError("malformed", "hello symbols field of %d bytes" % len(probe))
        self._peer_set(n, probe[:_FP_BYTES])
        if n == self.n and self.fp_peer == self.index.fingerprint():
            self.mode, self.state = "identical", "done"
            return M.encode(M.IDENTICAL)
        self._decode(0, probe)
        if self._decoder.complete:
            return self._finish_symbols()
        self.state = "wait-data"
        return M.encode(M.ESTIMATE, self.n, self.index.fingerprint(), estimate.to_wire(self.index.tow))

    def _decode(self, start, raw):
        """Subtract our symbols from theirs and peel."""
        count = len(raw) // riblt.SYMBOL_BYTES
        if self._decoder is None:
            self._decoder = riblt.Decoder()
        t_hi, t_lo, t_chk = riblt.symbols_from_bytes(raw)
        o_hi, o_lo, o_chk = self.index.symbols(start, start + count)
        d_hi, d_lo = (t_hi ^ o_hi).tolist(), (t_lo ^ o_lo).tolist()
        self._decoder.add_symbols([(a << 64) | b for a, b in zip(d_hi, d_lo)], (t_chk ^ o_chk).tolist())
        self.symbols = start + count

    def _on_symbols(self, start, raw):
        if start != self.symbols:
            raise SyncError("out-of-range", "symbols from %d, expected %d" % (start, self.symbols))
        count, rest = divmod(len(raw), riblt.SYMBOL_BYTES)
        if rest or count == 0:
            raise SyncError("malformed", "symbols field of %d bytes" % len(raw))
        if count > MAX_BATCH_SYMBOLS or start + count > MAX_SYMBOLS:
            raise SyncError("out-of-range", "%d symbols from %d, limits %d per message, %d in all"
                            % (count, start, MAX_BATCH_SYMBOLS, MAX_SYMBOLS))
        self.mode = "symbols"
        self._decode(start, raw)
        if self._decoder.complete:
            return self._finish_symbols()
        if self.symbols >= MAX_SYMBOLS or self._decoder.stalled:
            self.state = "wait-list"
            return M.encode(M.FALLBACK)
        self.state = "wait-symbols"
        want = max(MIN_MORE, int(math.ceil(self.symbols * MORE_FRACTION)))
        return M.encode(M.MORE, min(want, MAX_BATCH_SYMBOLS, MAX_SYMBOLS - self.symbols))

    def _finish_symbols(self):
        self.mode = "symbols"
        ids = self._decoder.ids
        if len(ids) > MAX_DIFFERENCES:
            raise SyncError("limit", "more than %d differences" % MAX_DIFFERENCES)
        hi = np.array([x >> 64 for x in ids], dtype=np.uint64)
        lo = np.array([x & riblt.MASK64 for x in ids], dtype=np.uint64)
        hi, lo = _sorted_pair(hi, lo)
        ours = self.index.contains_arrays(hi, lo)
        they_lack = (hi[ours], lo[ours])
        we_lack = (hi[~ours], lo[~ours])
        self._record(we_lack, they_lack)
        self.state = "done"
        # The initiator holds every id we lack, so 8 bytes name one of them
        # unless another id of the initiator's set shares those 8 bytes. Its
        # set is (ids we both hold) + (ids we lack), both known here, so we
        # see every such clash and send those ids whole.
        w_hi, w_lo = we_lack
        clash = np.searchsorted(self.index.arrays()[0], w_hi, "right") > \
            np.searchsorted(self.index.arrays()[0], w_hi, "left")
        if len(w_hi) > 1:
            same = w_hi[1:] == w_hi[:-1]
            clash[1:] |= same
            clash[:-1] |= same
        prefixes = w_hi[~clash].astype(">u8").tobytes()
        return M.encode(M.RESULT, self.index.fingerprint(), arrays_to_bytes(*they_lack), prefixes,
                        arrays_to_bytes(w_hi[clash], w_lo[clash]))

    def _on_list(self, bits, bucket, raw):
        if self.mode != "list":
            self.mode = "list"
            self._bits = list_bits(self.n_peer, self.n)
        if bits != self._bits:
            raise SyncError("out-of-range", "list with %d bucket bits, expected %d" % (bits, self._bits))
        if bucket != self._bucket:
            raise SyncError("out-of-range", "bucket %d, expected %d" % (bucket, self._bucket))
        t_hi, t_lo = _ids_field(raw, MAX_BUCKET_IDS, "list")
        if not _in_bucket(t_hi, bits, bucket):
            raise SyncError("inconsistent", "list ids outside bucket %d" % bucket)
        self._list_received += len(t_hi)
        if self._list_received > self.n_peer:
            raise SyncError("inconsistent", "more ids listed than the %d announced" % self.n_peer)
        m_hi, m_lo = self.index.bucket(bits, bucket)
        have = member(t_hi, t_lo, m_hi, m_lo)
        known = member(m_hi, m_lo, t_hi, t_lo)
        self._record((t_hi[~have], t_lo[~have]), (m_hi[~known], m_lo[~known]))
        self._bucket += 1
        self.state = "done" if self._bucket == 1 << bits else "wait-list"
        bitmap = np.packbits(~have, bitorder="little").tobytes()
        return M.encode(M.LIST_REPLY, bucket, bitmap, arrays_to_bytes(m_hi[~known], m_lo[~known]))

    # -- initiator -------------------------------------------------------

    def _on_identical(self):
        self.mode, self.state = "identical", "done"
        return None

    def _on_estimate(self, n, fp, tow):
        self._peer_set(n, fp)
        if len(tow) != estimate.TOW_BYTES:
            raise SyncError("malformed", "sketch of %d bytes, expected %d" % (len(tow), estimate.TOW_BYTES))
        k = max(estimate.estimate(tow, self.index.tow), abs(self.n - n))
        k = min(k, self.n + n)
        self.estimate = k
        first = int(math.ceil(FIRST_BATCH_FACTOR * k + FIRST_BATCH_EXTRA))
        symbols_cost = k * (SYMBOLS_PER_DIFFERENCE * riblt.SYMBOL_BYTES + 16)
        shared = max(0.0, (self.n + n - k) / 2)
        list_cost = 16 * (shared + k) + self.n / 8
        if self.n == 0 or n == 0 or first > MAX_SYMBOLS or list_cost < symbols_cost:
            return self._start_list()
        self.mode = "symbols"
        return self._send_symbols(max(MIN_MORE, min(first - self.symbols, MAX_BATCH_SYMBOLS)))

    def _send_symbols(self, count):
        start = self.symbols
        self.symbols += count
        self.state = "wait-decode"
        return M.encode(M.SYMBOLS, start, self.index.symbols_bytes(start, start + count))

    def _on_more(self, count):
        if count == 0 or count > MAX_BATCH_SYMBOLS or self.symbols + count > MAX_SYMBOLS:
            raise SyncError("limit", "peer asks for %d more symbols after %d" % (count, self.symbols))
        return self._send_symbols(count)

    def _on_result(self, fp, raw_we_lack, raw_prefixes, raw_they_lack):
        if len(fp) != _FP_BYTES or (self.fp_peer is not None and fp != self.fp_peer):
            raise SyncError("inconsistent", "result carries another fingerprint")
        self.fp_peer = fp
        self.mode = "symbols"
        limit = MAX_DIFFERENCES
        w_hi, w_lo = _ids_field(raw_we_lack, limit, "result")
        t_hi, t_lo = self._resolve(raw_prefixes, limit)
        f_hi, f_lo = _ids_field(raw_they_lack, limit, "result")
        t_hi, t_lo = _sorted_pair(np.concatenate([t_hi, f_hi]), np.concatenate([t_lo, f_lo]))
        if not strictly_sorted(t_hi, t_lo):
            raise SyncError("inconsistent", "result names an id twice")
        if self.index.contains_arrays(w_hi, w_lo).any():
            raise SyncError("inconsistent", "result says we lack ids we have")
        if not self.index.contains_arrays(t_hi, t_lo).all():
            raise SyncError("inconsistent", "result says they lack ids we do not have")
        # the XOR of every difference must be the XOR of the two fingerprints
        x = riblt.encode_np(np.concatenate([w_hi, t_hi]), np.concatenate([w_lo, t_lo]), 1)
        if riblt.symbols_to_bytes(*x, 0, 1) != _xor(self.index.fingerprint(), self.fp_peer):
            raise SyncError("inconsistent", "result does not match the fingerprints")
        self._record((w_hi, w_lo), (t_hi, t_lo))
        self.state = "done"
        return None

    def _resolve(self, raw, limit):
        """8-byte prefixes of ids we hold -> those ids; each must name exactly one."""
        if len(raw) % 8 or len(raw) // 8 > limit:
            raise SyncError("malformed", "result: prefixes field of %d bytes" % len(raw))
        p = np.frombuffer(raw, dtype=">u8").astype(np.uint64)
        if len(p) > 1 and not np.all(p[1:] > p[:-1]):
            raise SyncError("malformed", "result: prefixes not strictly ascending")
        s_hi, s_lo = self.index.arrays()
        a = np.searchsorted(s_hi, p, "left")
        if not np.all(np.searchsorted(s_hi, p, "right") - a == 1):
            raise SyncError("inconsistent", "result: a prefix names none or several of our ids")
        return s_hi[a], s_lo[a]

    def _on_fallback(self):
        return self._start_list()

    def _start_list(self):
        self.mode = "list"
        self._bits = list_bits(self.n, self.n_peer)
        return self._send_list()

    def _send_list(self):
        self._chunk = self.index.bucket(self._bits, self._bucket)
        if len(self._chunk[0]) > MAX_BUCKET_IDS:
            raise SyncError("limit", "bucket %d holds %d ids" % (self._bucket, len(self._chunk[0])))
        self.state = "wait-list-reply"
        return M.encode(M.LIST, self._bits, self._bucket, arrays_to_bytes(*self._chunk))

    def _on_list_reply(self, bucket, bitmap, raw):
        if bucket != self._bucket:
            raise SyncError("out-of-range", "reply for bucket %d, expected %d" % (bucket, self._bucket))
        c_hi, c_lo = self._chunk
        if len(bitmap) != (len(c_hi) + 7) // 8:
            raise SyncError("malformed", "bitmap of %d bytes for %d ids" % (len(bitmap), len(c_hi)))
        bits = np.unpackbits(np.frombuffer(bitmap, np.uint8), bitorder="little").astype(bool)
        if bits[len(c_hi):].any():
            raise SyncError("malformed", "bitmap padding bits set")
        lacks = bits[:len(c_hi)]
        e_hi, e_lo = _ids_field(raw, MAX_BUCKET_IDS, "list-reply")
        if not _in_bucket(e_hi, self._bits, bucket):
            raise SyncError("inconsistent", "reply ids outside bucket %d" % bucket)
        if member(e_hi, e_lo, c_hi, c_lo).any():
            raise SyncError("inconsistent", "reply says we lack ids we listed")
        self._record((e_hi, e_lo), (c_hi[lacks], c_lo[lacks]))
        self._bucket += 1
        if self._bucket == 1 << self._bits:
            self.state = "done"
            return None
        return self._send_list()


_HANDLERS = {
    ("wait-hello", M.HELLO): Reconciler._on_hello,
    ("wait-data", M.SYMBOLS): Reconciler._on_symbols,
    ("wait-symbols", M.SYMBOLS): Reconciler._on_symbols,
    ("wait-data", M.LIST): Reconciler._on_list,
    ("wait-list", M.LIST): Reconciler._on_list,
    ("wait-estimate", M.IDENTICAL): Reconciler._on_identical,
    ("wait-estimate", M.ESTIMATE): Reconciler._on_estimate,
    ("wait-estimate", M.RESULT): Reconciler._on_result,
    ("wait-decode", M.MORE): Reconciler._on_more,
    ("wait-decode", M.RESULT): Reconciler._on_result,
    ("wait-decode", M.FALLBACK): Reconciler._on_fallback,
    ("wait-list-reply", M.LIST_REPLY): Reconciler._on_list_reply,
}


def reconcile(index_a, index_b):
    """Run a whole sync in memory (tests, bench): returns the two reconcilers."""
    a, b = Reconciler(index_a, True), Reconciler(index_b, False)
    msg = a.start()
    while msg is not None:
        reply = b.receive(msg)
        msg = a.receive(reply) if reply is not None else None
    if not (a.done and b.done):
        raise SyncError("unexpected", "sync stopped with %s / %s" % (a.state, b.state))
    return a, b
