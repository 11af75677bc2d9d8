"""A store node (a leaf) running firmware/main.py's tasks with light sleep and
RX duty cycle, beside a bridge, in virtual time (tests/power/machinedouble.py):
it submits payments, the bridge takes them and sends each receipt back with
the long preamble. Prints one line of figures; runs on CPython and the unix
port alike.

    micropython -X heapsize=192k tests/power/sleep_village.py [sleep|awake]   (tests: from ROM, test_sleep.py)
"""
import asyncio
import sys

import main
from pen_protocol import cbor
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from pen_node.downlink import EV_RECEIPT
from pen_node.sleep import Meter, Sleeper, DutyListen, NodePower
from pen_node.boardsleep import leaf_preamble
from pen_node.preamble import PreambleByDestination
from machinedouble import Air, AsyncRadioDouble, MachineDouble, Esp32Double, Pin

P = PRESETS["eu868-sf9"]
STORE, BRIDGE = 2, 1
PAYMENTS = 3
LEAF_SLEEP = 93  # hardware/power.json leaf_rx sleep_symbols (test_sleep checks they agree)
GAP_MS = 900000  # 4 payments an hour: 200/h shared by the 49 stores of the 50-node village


class Rng:
    # mpykit.Rng's twin, kept here: importing mpykit (its radio double with it) under the unix port costs
    # more heap than the two nodes and the machine double leave at 192 KB (measured: MemoryError)
    def __init__(self, seed):
        self.s = seed

    def getrandbits(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 7) & ((1 << n) - 1)


class Configured:
    """The peer's modem as PreambleByDestination sees it: configure() only."""

    def configure(self, cfg):
        pass


def use(i):
    ref = bytes((0, 0, 0, 1, 0, 0, 0, i))
    return bytes([10]) + cbor.dumps([ref, b"\x12\x34\x56\x78", b"\x12\x34\x56\x79"]) + bytes(64)


def receipt(i):
    ref = bytes((0, 0, 0, 1, 0, 0, 0, i))
    return bytes([11]) + cbor.dumps([ref, bytes(16), b"\x01\x02\x03\x04", 1700000000]) + bytes(64)


def run(mode="sleep", payments=PAYMENTS, isr_by_hand=True):
    """isr_by_hand=False: a Sleeper that trusts the IRQ edge (the mistake
    pen_node/sleep.py avoids), to show the harness catches it."""
    bridge = MeshNode(BRIDGE, P, Journal(MemStorage(8192)), Rng(1), is_bridge=True)
    store = MeshNode(STORE, P, Journal(MemStorage(8192)), Rng(2))
    policy = None
    if mode == "sleep":  # the bridge knows the store is a leaf ("sleepy" in its /pen.json)
        policy = PreambleByDestination(Configured(), P.preamble, leaf_preamble(P.sf, LEAF_SLEEP), {STORE}, 4000)
    air = Air(bridge, P, policy)
    radio = AsyncRadioDouble(air)
    machine, esp32 = MachineDouble(air), Esp32Double()
    meter = Meter()

    air.link_at = [k * GAP_MS + 30000 for k in range(payments)]
    link_pin = Pin(lambda: air.link_due)

    def awake_wait(ms):  # an awake CPU's wait: any frame or link byte ends it, as asyncio's would
        air.advance(air.now + ms, stop=mode == "awake")

    if mode == "sleep":
        sleeper = Sleeper(machine, esp32, air.clock, radio.dio1,
                          radio._radio_isr if isr_by_hand else (lambda pin: None), meter, awake_wait, link_pin)
        leaf = DutyListen(radio.arm_duty_cycle, meter, 4000, 0)
    else:  # the same loop, never sleeping: every wait is an awake one, any frame interrupts it
        sleeper = Sleeper(machine, esp32, air.clock, radio.dio1, radio._radio_isr, meter, awake_wait,
                          min_sleep_ms=1 << 40)
        machine.lightsleep = None
        leaf = None
    power = NodePower(meter, 22, sleeper, leaf, leaf is not None)
    got = []
    stuck = []
    receipts = []
    submitted = {}

    async def village():
        task = asyncio.create_task(main.serve(store, radio, air.clock, power=power))
        k = 0
        last, spins = -1, 0
        while air.now < payments * GAP_MS + 600000 and len(receipts) < payments:
            spins = spins + 1 if air.now == last else 0
            last = air.now
            if spins > 50:  # virtual time stands still: the loop spins without ever sleeping
                stuck.append(air.now)
                break
            while air.link_due:  # the link task hands the phone's payment to the node
                k += 1
                submitted[k] = air.link_due.pop(0)
                store.submit(use(k), air.now)
            for rec in bridge.take_delivered():
                got.append((rec[0], air.now))
                bridge.broadcast(receipt(len(got)), air.now)
                air.peer_t = min(air.peer_t, bridge.next_wakeup_ms(air.now))
            for ev in store.take_events():
                if ev[0] == EV_RECEIPT:
                    receipts.append(air.now)
            await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(village())
    elapsed = air.now
    if leaf is not None:
        leaf.close(elapsed)
    slept = sum(s[1] for s in machine.sleeps) if mode == "sleep" else 0
    wakes = {}
    for s in machine.sleeps if mode == "sleep" else ():  # noqa: B007
        wakes[s[2]] = wakes.get(s[2], 0) + 1
    return {"delivered": len(got), "receipts": len(receipts), "stuck": bool(stuck), "elapsed_ms": elapsed, "slept_ms": slept,
            "dio1_wakes": wakes.get("dio1", 0), "timer_wakes": wakes.get("timer", 0),
            "link_wakes": wakes.get("link", 0), "armed": [a[0] for a in esp32.armed],
            "isr_by_hand": radio.isr_runs, "duty_arms": radio.duty_arms, "missed": air.missed,
            "rxdc_ms": meter.ms[1], "long_sent": air.long_sent, "active_ms": meter.ms[3], "tx_ms": meter.tx_total(),
            "store_sent": [t for t, f in radio.sent], "held": len(store.journal.live),
            "receipt_ms": receipts, "submitted_ms": [submitted[k] for k in sorted(submitted)]}


def line():
    """The figures tests/power/test_sleep.py compares across runtimes, for
    sys.argv[1] (sleep|awake): run from a ROM image (run_micropython(rom=True))."""
    r = run(sys.argv[1])
    print(r["delivered"], r["receipts"], r["held"], r["receipt_ms"], r["dio1_wakes"], r["store_sent"])


if __name__ == "__main__":
    r = run(sys.argv[-1] if sys.argv[-1] in ("sleep", "awake") else "sleep")
    print(" ".join("%s=%s" % (k, r[k]) for k in ("delivered", "receipts", "held", "elapsed_ms", "slept_ms",
                                                  "dio1_wakes", "timer_wakes", "link_wakes", "duty_arms", "missed", "rxdc_ms",
                                                  "active_ms", "tx_ms")))
