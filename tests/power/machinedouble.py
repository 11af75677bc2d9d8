"""A board in virtual time, for the sleep path on both runtimes: `machine`
and `esp32` doubles that record every light sleep and its wake source, an
SX126x-shaped async radio, and the air around it with one real MeshNode peer
(a bridge) stepped in the same virtual time.

Virtual time moves only when the node under test sleeps (lightsleep, an
awake sleep_ms) or transmits, so hours of a node's life run in a moment and
every run is the same. A frame that ends while the CPU is in light sleep
raises DIO1 (a level, as the chip's RX_DONE IRQ line stays high until the
driver clears it) and wakes the CPU, but its ISR does not run: the edge came
while the CPU slept, which is what pen_node/sleep.py must cope with."""
import asyncio

from pen_protocol.airtime import time_on_air_us
from pen_node.radio import RxPacket

NEVER = 1 << 60
LINK = (-90, 20)  # rssi dBm, snr x4 both ways


class Pin:
    def __init__(self, level):
        self.level = level  # a function: the line's level now

    def value(self):
        return 1 if self.level() else 0


class Esp32Double:
    WAKEUP_ALL_LOW = 0
    WAKEUP_ANY_HIGH = 1

    def __init__(self):
        self.armed = []

    def wake_on_ext0(self, pin, level):
        self.armed.append(("ext0", pin, level))

    def wake_on_ext1(self, pins, level):
        self.armed.append(("ext1", pins, level))


class MachineDouble:
    def __init__(self, air):
        self.air = air
        self.sleeps = []  # (ms asked, ms slept, wake source)

    def lightsleep(self, ms):
        t0 = self.air.now
        why = self.air.advance(t0 + ms, asleep=True)
        self.sleeps.append((ms, self.air.now - t0, why))


class Air:
    """The node under test (its AsyncRadioDouble) and one peer MeshNode."""

    def __init__(self, peer, preset, policy=None):
        self.now = 0
        self.peer = peer
        self.p = preset
        self.radio = None
        self.flying = []  # [end_ms, frame, long_preamble] toward the node under test
        self.peer_t = 0
        self.policy = policy  # the peer's sx126x.PreambleByDestination, or None: the preset's preamble always
        self.missed = 0  # frames a duty-cycled receiver slept through
        self.peer_sent = []
        self.long_sent = 0  # frames the peer sent with the long preamble
        self.link_at = []  # times a link byte arrives (a store's phone hands in a payment)
        self.link_due = []

    def clock(self):
        return self.now

    def airtime_ms(self, n, preamble=None):
        p = self.p
        return time_on_air_us(n, p.sf, p.bw_hz, p.cr, preamble or p.preamble) // 1000

    def _peer_step(self, t):
        f = self.peer.next_tx(t)
        if f is None:
            self.peer_t = self.peer.next_wakeup_ms(t)
            return
        pre = self.policy.set_for(f, t) if self.policy is not None else self.p.preamble
        long_pre = pre != self.p.preamble
        end = t + self.airtime_ms(len(f), pre)
        self.flying.append([end, bytes(f), long_pre])
        self.long_sent += long_pre
        self.peer_sent.append((t, bytes(f)))
        self.peer.on_tx_done(end)
        self.peer_t = max(end, self.peer.next_wakeup_ms(end))

    def advance(self, to_ms, asleep=False, transmitting=False, stop=None):
        """Run the air to to_ms; stop early when a frame reaches the node
        under test ('dio1') or the link has a byte ('link'), if stop (default:
        asleep). Returns the wake source."""
        stop = asleep if stop is None else stop
        while True:
            nxt_rx = min([x[0] for x in self.flying]) if self.flying else NEVER
            nxt_link = self.link_at[0] if self.link_at and not transmitting else NEVER
            t = min(self.peer_t, nxt_rx, nxt_link)
            if t > to_ms:
                self.now = max(self.now, to_ms)
                return "timer"
            self.now = max(self.now, t)
            if nxt_link == t:
                self.link_due.append(self.link_at.pop(0))
                if stop:
                    return "link"
                continue
            if nxt_rx <= self.peer_t:
                x = [x for x in self.flying if x[0] == nxt_rx][0]
                self.flying.remove(x)
                if transmitting:
                    continue  # half duplex: lost while the node sends
                if self.radio.duty and not x[2]:
                    self.missed += 1  # a short preamble between two listening windows
                    continue
                self.radio.arrive(x[1], t, asleep)
                if stop:
                    return "dio1"
            else:
                self._peer_step(t)


class AsyncRadioDouble:
    """The async driver's shape: await send, async for over recv_continuous,
    _radio_isr (what DIO1's IRQ calls), and an SX126x's RX duty cycle state."""

    def __init__(self, air):
        self.air = air
        air.radio = self
        self.inbox = []
        self.ev = asyncio.Event()
        self.duty = False
        self.duty_arms = 0
        self.isr_runs = 0
        self.sent = []
        self.dio1 = Pin(lambda: self.inbox)

    def arrive(self, frame, t, asleep):
        self.inbox.append(RxPacket(frame, t, LINK[1], LINK[0]))
        self.duty = False  # a packet leaves the chip in standby; the driver resumes continuous RX
        if not asleep:
            self._radio_isr(None)  # awake: the IRQ runs at once

    def _radio_isr(self, _):
        self.isr_runs += 1
        self.ev.set()

    def arm_duty_cycle(self):
        self.duty = True
        self.duty_arms += 1

    async def send(self, packet, tx_at_ms=None):
        t0 = self.air.now
        self.sent.append((t0, bytes(packet)))
        self.duty = False
        self.air.advance(t0 + self.air.airtime_ms(len(packet)), transmitting=True)
        self.air.peer.on_frame(bytes(packet), LINK[0], LINK[1], self.air.now)
        if self.air.policy is not None:
            self.air.policy.heard(packet, self.air.now)
        self.air.peer_t = min(self.air.peer_t, self.air.peer.next_wakeup_ms(self.air.now))
        await asyncio.sleep(0)

    def recv_continuous(self):
        return self

    def __aiter__(self):
        return self

    async def __anext__(self):
        while not self.inbox:
            self.ev.clear()
            await self.ev.wait()
        return self.inbox.pop(0)
