"""Checking a batch's signatures on more than one core.

libsodium verifies one Ed25519 signature in ~55 us and PyNaCl holds the GIL
while it does, so threads do not help: worker processes take a share of
each batch. The store validates a batch optimistically (every signature
assumed good, each one recorded; pen_protocol.ctb.apply_batch explains why
that is exact when all then verify) into collect()'s stream, which ships the
signatures to the workers in chunks while the validator is still running,
and asks all_valid() before it commits;
any bad signature makes it validate the batch again, one check at a time,
for the exact verdicts.

A worker is `python -m pen.verifypool` on two pipes (not multiprocessing,
which would re-import the parent's main module): a request is a u32 length
and that many bytes of (public key 32, signature 64, u16 message length,
message) entries; the answer is one byte, 1 if every signature verifies.
"""
import os
import struct
import subprocess
import sys
import threading

from pen_protocol import sign

# A batch smaller than this is checked here: shipping it costs more than it saves.
MIN_SHARED = 64
# Signatures a stream (collect()) ships to a worker at once: ~10 KB, a few
# ms of work, small enough that the last chunk ends soon after validation.
STREAM_CHUNK = 64
# CPU a record costs this process apart from its signature (parse, validate,
# write) and a signature check, per record, measured with process_time on
# the bench workload (23 and 37 us). A stream keeps the share of chunks that
# makes this process and each worker finish together: with one worker, one
# chunk in five (main 23 + 0.19 x 37 = worker 0.81 x 37 = 30 us a record,
# against 38 us with whole-batch shares); with two or more, none.
OTHER_US = 23.0
VERIFY_US = 37.0
# Each worker checks this many signatures for every one this process keeps:
# this process also writes the batch meanwhile (~8 us a record against
# ~55 us a verify), so one worker takes 55 % of a batch.
WORKER_WEIGHT = 1.2


def verify_all(triples):
    """True if every (public key, message, signature) verifies."""
    v = sign.verify
    for pk, msg, sig in triples:
        if not v(pk, msg, sig):
            return False
    return True


def _pack(triples):
    parts = []
    for pk, msg, sig in triples:
        parts.append(bytes(pk) + bytes(sig) + struct.pack(">H", len(msg)) + bytes(msg))
    body = b"".join(parts)
    return struct.pack(">I", len(body)) + body


def _unpack(body):
    out = []
    i = 0
    while i < len(body):
        pk, sig = body[i:i + 32], body[i + 32:i + 96]
        n = struct.unpack(">H", body[i + 96:i + 98])[0]
        out.append((pk, body[i + 98:i + 98 + n], sig))
        i += 98 + n
    return out


def _read(f, n):
    data = f.read(n)
    if len(data) != n:
        raise EOFError
    return data


def worker_main():
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            n = struct.unpack(">I", _read(inp, 4))[0]
            body = _read(inp, n)
        except EOFError:
            return
        out.write(b"\x01" if verify_all(_unpack(body)) else b"\x00")
        out.flush()


class ParallelVerifier:
    def __init__(self, workers=1):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._procs = [subprocess.Popen([sys.executable, "-m", "pen.verifypool"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env) for _ in range(workers)]
        self._lock = threading.Lock()  # one batch on the pipes at a time

    def collect(self):
        """A list-like for one batch's signatures that ships them to the
        workers in chunks while the validator is still recording them (the
        store passes it to ctb.apply_batch's verify hook, then to
        all_valid): the workers check signatures while this process
        validates, instead of after. One batch at a time: a stream left
        unfinished (a rejected batch) is drained when the next begins."""
        with self._lock:
            self._drain()
            self._stream = _Stream(self._procs)
            return self._stream

    def _drain(self):
        s = getattr(self, "_stream", None)
        if s is not None:
            s.answers()
            self._stream = None

    def all_valid(self, triples, meanwhile=None):
        """True if every signature verifies. meanwhile() runs here while the
        workers check their shares (the store writes the batch then)."""
        if isinstance(triples, _Stream):
            with self._lock:
                self._stream = None
                return triples.finish(meanwhile)
        n = len(triples)
        if n < MIN_SHARED:
            if meanwhile is not None:
                meanwhile()
            return verify_all(triples)
        with self._lock:
            self._drain()
            return self._shared(triples, meanwhile)

    def _shared(self, triples, meanwhile):
        n = len(triples)
        w = len(self._procs)
        share = int(n * WORKER_WEIGHT / (w * WORKER_WEIGHT + 1))
        for i, p in enumerate(self._procs):
            p.stdin.write(_pack(triples[i * share:(i + 1) * share]))
            p.stdin.flush()
        if meanwhile is not None:
            meanwhile()
        ok = verify_all(triples[w * share:])
        for p in self._procs:
            answer = p.stdout.read(1)
            if answer not in (b"\x00", b"\x01"):
                raise RuntimeError("signature worker %d died" % p.pid)
            ok = ok and answer == b"\x01"
        return ok

    def workers_valid(self, triples):
        """Every signature checked by the workers alone, in equal shares
        (this process only waits): the bare verify bound on as many cores
        as there are workers (pen bench ingest)."""
        w = len(self._procs)
        share = -(-len(triples) // w)
        with self._lock:
            self._drain()
            for i, p in enumerate(self._procs):
                p.stdin.write(_pack(triples[i * share:(i + 1) * share]))
                p.stdin.flush()
            answers = [p.stdout.read(1) for p in self._procs]
        if any(a not in (b"\x00", b"\x01") for a in answers):
            raise RuntimeError("a signature worker died")
        return all(a == b"\x01" for a in answers)

    def close(self):
        for p in self._procs:
            p.stdin.close()
            p.wait(10)


class _Stream:
    """One batch's signatures, shipped a chunk at a time, round robin, as
    they are recorded; what is left under a chunk at the end is checked
    here while the workers finish."""

    def __init__(self, procs):
        self.procs = procs
        self.buf = []
        self.kept = []  # chunks this process checks at the end
        self.n = 0
        self.waiting = [0] * len(procs)  # answers owed by each worker
        self.next = 0
        w = len(procs)
        keep = max(0.0, (VERIFY_US / w - OTHER_US) / (VERIFY_US + VERIFY_US / w))
        self.keep_every = int(round(1 / keep)) if keep > 0 else 0  # keep chunk number k when k % this == 0
        self.chunks = 0

    def __len__(self):
        return self.n

    def append(self, triple):
        self.buf.append(triple)
        self.n += 1
        if len(self.buf) >= STREAM_CHUNK:
            self.chunks += 1
            if self.keep_every and self.chunks % self.keep_every == 0:
                self.kept += self.buf
                self.buf = []
                return
            p = self.procs[self.next]
            p.stdin.write(_pack(self.buf))
            p.stdin.flush()
            self.waiting[self.next] += 1
            self.next = (self.next + 1) % len(self.procs)
            self.buf = []

    def finish(self, meanwhile):
        if meanwhile is not None:
            meanwhile()
        ok = verify_all(self.kept) and verify_all(self.buf)
        self.buf, self.kept = [], []
        return self.answers() and ok

    def answers(self):
        """Read every answer owed; True if all said valid."""
        ok = True
        for i, p in enumerate(self.procs):
            while self.waiting[i]:
                answer = p.stdout.read(1)
                if answer not in (b"\x00", b"\x01"):
                    raise RuntimeError("signature worker %d died" % p.pid)
                self.waiting[i] -= 1
                ok = ok and answer == b"\x01"
        return ok


if __name__ == "__main__":
    worker_main()
