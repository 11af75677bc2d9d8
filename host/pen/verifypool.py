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
import time

from pen_protocol import sign

# A batch smaller than this is checked here: shipping it costs more than it saves.
MIN_SHARED = 64
# Signatures a stream (collect()) ships to a worker at once: ~10 KB, a few
# ms of work, small enough that the last chunk ends soon after validation.
STREAM_CHUNK = 64
# CPU a record costs this process apart from the signatures it keeps (parse,
# validate, write, pack what it ships, and check the last part-chunk of each
# 500-record batch), and a signature check, per record, measured with
# process_time on the bench workload (~22 and ~41 us, issue 14). A stream
# starts by keeping the share of chunks that makes this process and each
# worker finish together: with one worker, (41 - 22) / (41 + 41) = 0.23 of
# them; with two or more, none. Then it follows the machine (KEEP_STEP).
OTHER_US = 22.0
VERIFY_US = 41.0
# After each streamed batch the kept share moves by KEEP_STEP: up when this
# process waited for a worker's answers longer than half a chunk takes to
# check (moving one chunk over would overshoot a shorter wait), down when the
# answers were already there (the workers may have idled), else it holds; so
# both finish together whatever else runs on the machine.
KEEP_STEP = 0.02
KEEP_MAX = 0.9
WAIT_MORE_S = STREAM_CHUNK * VERIFY_US / 2 * 1e-6
WAIT_NONE_S = 0.0002  # reading answers that are there: ~20 us each
# Each worker checks this many signatures for every one this process keeps:
# this process also writes the batch meanwhile (~8 us a record against
# ~55 us a verify), so one worker takes 55 % of a batch.
WORKER_WEIGHT = 1.2


def initial_keep(workers):
    """The share of a stream's chunks this process checks itself, at first."""
    return max(0.0, (VERIFY_US / workers - OTHER_US) / (VERIFY_US + VERIFY_US / workers))


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
    """workers: processes beside this one; clock: seconds (the stream's
    waits steer the share this process keeps)."""

    def __init__(self, workers=1, clock=time.perf_counter):
        self.clock = clock
        self.keep = initial_keep(workers)  # share of a stream's chunks checked here
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._procs = [subprocess.Popen([sys.executable, "-m", "pen.verifypool"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env) for _ in range(workers)]
        self._lock = threading.Lock()  # one batch on the pipes at a time
        self.shipped = [0]  # signatures sent to the workers so far (a count, whatever the load)

    def collect(self):
        """A list-like for one batch's signatures that ships them to the
        workers in chunks while the validator is still recording them (the
        store passes it to ctb.apply_batch's verify hook, then to
        all_valid): the workers check signatures while this process
        validates, instead of after. One batch at a time: a stream left
        unfinished (a rejected batch) is drained when the next begins."""
        with self._lock:
            self._drain()
            self._stream = _Stream(self._procs, self.keep, self.shipped)
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
                ok, waited = triples.finish(meanwhile, self.clock)
                if triples.chunks and (waited > WAIT_MORE_S or waited < WAIT_NONE_S):
                    step = KEEP_STEP if waited > WAIT_MORE_S else -KEEP_STEP
                    self.keep = min(KEEP_MAX, max(0.0, self.keep + step))
                return ok
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
        self.shipped[0] += w * share
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

    def cpu_s(self):
        """CPU seconds each worker has used so far (Linux /proc; None
        elsewhere): pen bench ingest's load-independent figures."""
        try:
            tick = os.sysconf("SC_CLK_TCK")
            out = []
            for p in self._procs:
                with open("/proc/%d/stat" % p.pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out.append((int(fields[11]) + int(fields[12])) / tick)  # utime, stime
            return out
        except (OSError, ValueError, IndexError, AttributeError):
            return None

    def close(self):
        for p in self._procs:
            p.stdin.close()
            p.wait(10)


class _Stream:
    """One batch's signatures, shipped a chunk at a time, round robin, as
    they are recorded; a `keep` share of the chunks and what is left under
    a chunk at the end are checked here while the workers finish."""

    def __init__(self, procs, keep, shipped):
        self.procs = procs
        self.shipped = shipped
        self.buf = []
        self.kept = []  # chunks this process checks at the end
        self.n = 0
        self.waiting = [0] * len(procs)  # answers owed by each worker
        self.next = 0
        self.keep = keep
        self.credit = 0.0  # kept chunks owed: + keep a chunk, - 1 a chunk kept
        self.chunks = 0

    def __len__(self):
        return self.n

    def append(self, triple):
        self.buf.append(triple)
        self.n += 1
        if len(self.buf) >= STREAM_CHUNK:
            self.chunks += 1
            self.credit += self.keep
            if self.credit >= 1.0:
                self.credit -= 1.0
                self.kept += self.buf
                self.buf = []
                return
            p = self.procs[self.next]
            p.stdin.write(_pack(self.buf))
            p.stdin.flush()
            self.shipped[0] += len(self.buf)
            self.waiting[self.next] += 1
            self.next = (self.next + 1) % len(self.procs)
            self.buf = []

    def finish(self, meanwhile, clock):
        """(True if every signature verifies, seconds spent waiting for the
        workers after this process was done)."""
        if meanwhile is not None:
            meanwhile()
        ok = verify_all(self.kept) and verify_all(self.buf)
        self.buf, self.kept = [], []
        t = clock()
        ok = self.answers() and ok
        return ok, clock() - t

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
