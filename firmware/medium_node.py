"""A node for `pen sim --runtime micropython`: the real firmware core
(pen_node.mesh.MeshNode) in a MicroPython process, on the simulator's radio
medium over UDP on 127.0.0.1, in lock-step virtual time.

    micropython medium_node.py MEDIUM_PORT ADDR PRESET [bridge]

Medium -> node (one datagram each; now = virtual ms, 8 bytes big-endian;
busy = 1 when channel activity detection would report a frame on air):
    K now busy                  time is now: run timers
    R now busy rssi snr frame   a frame was received (rssi, snr x4: signed bytes)
    D now busy                  our transmission ended
    S now busy record           a store submits a payment here
    A now busy record           (bridge) a receipt from the CTB to send down
    Q                           quit
Node -> medium, after every message: any of
    T frame  (transmit)   V record (bridge: delivered)   E 1 ref (receipt at origin)
    B 1|0    (after S or A: taken, or refused: journal or queues full)
and then exactly one  W wakeup (8 bytes).
"""
import gc
gc.collect()
BEGIN = gc.mem_free() if hasattr(gc, "mem_free") else 0  # before the node's modules: counted from here
import socket
import sys

from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal, FileStorage
from pen_node.downlink import EV_RECEIPT
from pen_node.custody import custody_room
from pen_node.mesh import MeshNode


class XorShift:
    """Seeded PRNG with getrandbits, as MeshNode wants (no random.Random here)."""

    def __init__(self, seed):
        self.s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1

    def getrandbits(self, n):
        out = 0
        got = 0
        while got < n:
            x = self.s
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            self.s = x
            out = (out << 32) | x
            got += 32
        return out & ((1 << n) - 1)


def s8(b):
    return b - 256 if b > 127 else b


def main(argv=None):
    argv = argv or sys.argv
    port = int(argv[1])
    addr = int(argv[2])
    preset = PRESETS[argv[3]]
    bridge = len(argv) > 4 and argv[4] == "bridge"
    state = {"busy": False}
    # the journal lives in a file, as on a board's flash (littlefs), not in RAM
    path = "/tmp/pen-sim-%d-%d.journal" % (port, addr)
    try:
        import os
        os.remove(path)
    except OSError:
        pass
    gc.collect()
    node = MeshNode(addr, preset, Journal(FileStorage(path, 16384)), XorShift(addr), is_bridge=bridge,
                    channel_busy=lambda now_ms: state["busy"], dedup=32, reverse=32,
                    spent_capacity=64)
    gc.collect()
    node.journal.max_live = custody_room(gc.mem_free(), node.journal.max_live)
    medium = socket.getaddrinfo("127.0.0.1", port)[0][-1]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto(b"H" + bytes((addr >> 8, addr & 255)), medium)
    low = gc.mem_free()
    while True:
        # collect between messages: a 64 KB heap must not fragment over hours
        gc.collect()
        low = min(low, gc.mem_free())
        msg = sock.recv(600)
        kind = msg[0]
        if kind == 0x51:  # Q
            # the free heap at start, the most the node took of it (modules, node, traffic), the least left
            print("heap", BEGIN, "peak_used", BEGIN - low, "low_free", low)
            break
        now = int.from_bytes(msg[1:9], "big")
        state["busy"] = msg[9] == 1
        if kind == 0x52:  # R
            node.on_frame(msg[12:], s8(msg[10]), s8(msg[11]), now)
        elif kind == 0x44:  # D
            node.on_tx_done(now)
        elif kind == 0x53 or kind == 0x41:  # S, A: answered B 1|0
            ok = node.submit(msg[10:], now) if kind == 0x53 else node.broadcast(msg[10:], now)
            sock.sendto(b"B\x01" if ok else b"B\x00", medium)
        f = node.next_tx(now)
        if f is not None:
            sock.sendto(b"T" + f, medium)
        if bridge:
            for rec in node.take_delivered():
                sock.sendto(b"V" + rec, medium)
                node.host_ack(rec)
        for ev in node.take_events():
            if ev[0] == EV_RECEIPT:
                sock.sendto(b"E\x01" + ev[1], medium)
        sock.sendto(b"W" + node.next_wakeup_ms(now).to_bytes(8, "big"), medium)


if __name__ == "__main__":
    main(sys.argv)
