"""Random frames at one keyed node under MicroPython: mutations of real
frames (and pure noise), each heard as it is and sealed with the village
key as an insider would send it. No exception may escape; a frame without a
right tag must change nothing (state() equal before and after).

    micropython -X heapsize=76k -m fuzz_frames_mpy [COUNT] [SEED] [JOURNAL]
    (tests run it with its bytecode in ROM and 64 KB of heap beside: run_micropython(rom=True))

Prints: frames, authentic, refused (bad tag), state changes by unauthentic
frames (must be 0), exceptions (must be 0), ms taken.
"""
import gc
import sys
import time

from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal, FileStorage
from pen_node.mesh import MeshNode
from mpykit import Rng

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 1
# the journal is a file, as on a board's flash: not on the heap
STORAGE = FileStorage(sys.argv[3] if len(sys.argv) > 3 else "/tmp/pen-fuzz-frames.journal", 2048)
SECRET = b"pen/1/fuzz-village-secret"
KEY = F.net_key(SECRET)
P = PRESETS["eu868-sf9"]
USE = b"\x0a\x83\x48" + bytes((0, 0, 0, 1, 0, 0, 0, 7)) + b"\x44\x12\x34\x56\x78\x44\x12\x34\x56\x79" + bytes(64)
ACC = b"\x0b\x84\x48" + bytes((0, 0, 0, 1, 0, 0, 0, 7)) + b"\x50" + bytes(16) \
    + b"\x44\x01\x02\x03\x04\x1a\x65\x53\xf1\x00" + bytes(64)


def state(n):
    return (len(n.pending), len(n.journal.live), bytes(n.spent.ring.ids), len(n.acks), len(n.floods),
            n.parent, len(n.events), bytes(n.seen.ids), n.beacon_due, n.lbt_until, n.stats["rx_bad"],
            n.stats["custody_in"], n.stats["dup_dropped"])


def main():
    rng = Rng(SEED)
    gc.collect()
    n = MeshNode(2, P, Journal(STORAGE, max_live=4), Rng(7), net_key=SECRET, dedup=16, reverse=16,
                 spent_capacity=16)
    n.on_frame(F.seal(F.pack(F.Header(F.T_BEACON, 1, F.BROADCAST, 1, 0, 0), bytes((0, 1, 0, 0))), KEY), -80, 20, 0)
    n.submit(USE, 10)
    seeds = [F.record_frame(USE, 3, 2, 3), F.record_frame(ACC, 1, 2, 1), F.record_frame(ACC, 1, F.BROADCAST, 1, 5),
             F.ack_frame([b"abcd"], 1, 2), bytes((0x24, 0, 0, 5, 0xFF, 0xFF, 0, 5, 0, 1, 2, 5)),
             F.pack(F.Header(F.T_BEACON, 5, F.BROADCAST, 5, 0, 0), bytes((0, 2, 9, 0))),
             # a receipt digest (pen_protocol.digest) naming the USE above and one other
             F.pack(F.Header(F.T_DIGEST, 1, F.BROADCAST, 1, 5), b"\x0a\x0b\x0c\x0d\x6a\xfd\x3a\x80\0\0\0\x01\0\0\0\x07"
                    b"\x01\x02\x03\x04\0\0\0\x01\0\0\0\x08\x05\x06\x07\x08" + bytes(64))]
    buf = bytearray(250)
    authentic = refused = changed = errors = 0
    t0 = time.ticks_ms()
    now = 100
    for k in range(COUNT):
        if rng.getrandbits(4) == 0:  # noise
            ln = 1 + rng.getrandbits(7)
            for i in range(ln):
                buf[i] = rng.getrandbits(8)
            f = bytes(buf[:ln])
        else:
            f = bytearray(seeds[rng.getrandbits(8) % len(seeds)])
            for _ in range(1 + rng.getrandbits(2)):
                f[rng.getrandbits(8) % len(f)] = rng.getrandbits(8)
            f = bytes(f)
        now += 1 + rng.getrandbits(10)
        try:
            if rng.getrandbits(1):
                before = state(n)
                n.on_frame(f, -80, 20, now)
                if F.unseal(f, KEY) < 0:
                    refused += 1
                    if state(n) != before:
                        changed += 1
            else:
                n.on_frame(F.seal(f, KEY), -80, rng.getrandbits(7) - 64, now)
                authentic += 1
            if n.next_tx(now) is not None:
                n.on_tx_done(now + 1)
            n.take_events()
        except Exception as e:
            errors += 1
            print("error", repr(e), f)
        if k % 64 == 0:
            gc.collect()
    print(COUNT, authentic, refused, changed, errors, time.ticks_diff(time.ticks_ms(), t0))


main()
