"""Light sleep between events, and the leaf's duty-cycled listening.

The board's loop (main.tx_task) asks Sleeper.nap(until_ms) when it has
nothing to send: the ESP32 light-sleeps until the radio's DIO1 goes high (a
frame received: the SX126x keeps receiving into its own buffer while the CPU
sleeps), a link wake pin, or until_ms (next_wakeup_ms, a timer). Then the
tasks run again.

Why a frame is never missed: DIO1 is armed as a *level* wake source
(WAKEUP_ANY_HIGH), not an edge. A frame that completed between the last
check and lightsleep() leaves DIO1 high, so the CPU does not sleep at all;
and after any wake the driver's ISR is run by hand when DIO1 is high, since
its edge may have come while the CPU was asleep (lora.modem._radio_isr only
timestamps and sets the async driver's flag: safe to call twice).

machine, esp32 and the clock are passed in (tests/power/machinedouble.py is
the test double, on both runtimes).
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# Meter slots, radio side then MCU side (integers: ms, no floats on the hot path)
R_RX = const(0)  # continuous receive
R_RXDC = const(1)  # receive in duty cycle (SetRxDutyCycle)
R_SLEEP = const(2)
M_ACTIVE = const(3)
M_SLEEP = const(4)  # light sleep; MCU idle is whatever is left of the elapsed time
_SLOTS = const(5)

_MIN_SLEEP_MS = const(10)  # hardware/power.json firmware.min_sleep_ms: a shorter nap costs more than it saves


class Meter:
    """What the node's loop did, in ms per state (and TX by dBm), for
    pen_node.power.Budget to price. The loop adds as it goes; nothing here
    reads a clock."""

    def __init__(self):
        self.ms = [0] * _SLOTS
        self.tx_ms = {}  # dBm -> ms on air
        self.wakes = 0
        self.frames = 0
        self.duty = None  # (rx, sleep) symbols of the RX duty cycle in R_RXDC; None: the leaves' (power.json)

    def add(self, slot, ms):
        if ms > 0:
            self.ms[slot] += ms

    def tx(self, dbm, ms):
        if ms > 0:
            self.tx_ms[dbm] = self.tx_ms.get(dbm, 0) + ms

    def tx_total(self):
        return sum(self.tx_ms.values())

    def awake_fraction(self, elapsed_ms):
        return 1 - self.ms[M_SLEEP] / elapsed_ms if elapsed_ms > 0 else 1.0


class Sleeper:
    def __init__(self, machine, esp32, clock, dio1, on_dio1, meter, sleep_ms, link_pin=None,
                 min_sleep_ms=_MIN_SLEEP_MS):
        self.machine = machine
        self.sleep_ms = sleep_ms  # time.sleep_ms: an awake wait for gaps too short to sleep
        self.clock = clock
        self.dio1 = dio1
        self.on_dio1 = on_dio1
        self.meter = meter
        self.min_sleep_ms = min_sleep_ms
        self.link_pin = link_pin
        self.woke_at = clock()
        self.tx_ms = 0  # radio TX while awake (the CPU waits, it is not active)
        esp32.wake_on_ext0(dio1, esp32.WAKEUP_ANY_HIGH)
        if link_pin is not None:
            # a link's first byte (its start bit pulls RX low) wakes the CPU;
            # that frame is lost, and the PC sends a request it had no answer
            # to again after 2 s (docs/link.md, pen.bridge.driver.RESEND_S)
            esp32.wake_on_ext1((link_pin,), esp32.WAKEUP_ALL_LOW)

    def sent(self, ms):
        self.tx_ms += ms

    def nap(self, until_ms):
        """Sleep until until_ms or a wake source; returns the ms slept (0:
        the radio has news or the gap is too short to be worth it)."""
        now = self.clock()
        self.meter.add(M_ACTIVE, now - self.woke_at - self.tx_ms)
        self.tx_ms = 0
        self.woke_at = now
        if self.dio1.value():
            self.on_dio1(self.dio1)
            return 0
        if until_ms - now < self.min_sleep_ms:
            self.sleep_ms(max(1, until_ms - now))  # awake: a timer (an ack) is due within ms
            self.woke_at = self.clock()  # that wait was idle, not active
            return 0
        self.machine.lightsleep(until_ms - now)
        after = self.clock()
        self.meter.add(M_SLEEP, after - now)
        self.meter.wakes += 1
        self.woke_at = after
        if self.dio1.value():
            self.on_dio1(self.dio1)
        return after - now


class DutyListen:
    """The radio listens in RX duty cycle except for a window after each of
    the node's own transmissions. A leaf (relays for no one) has a window:
    its hop's ack comes then, with an ordinary preamble. A relay in RX duty
    cycle (opt-in, "relay_rx_duty") has none: its windows are short enough
    for the preset's own preamble. The driver resumes continuous RX after a
    send by itself (and after any frame, which leaves the chip in standby);
    this arms the duty cycle again once the window is over."""

    def __init__(self, arm, meter, window_ms, now_ms):
        self.arm = arm  # arm(): start the RX duty cycle (sx126x.start_rx_duty_cycle with the periods)
        self.meter = meter
        self.window_ms = window_ms
        self.listen_until = now_ms + window_ms
        self.duty_since = -1  # ms the duty cycle was armed at, -1 = continuous RX now

    def sent(self, now_ms):
        self._leave_duty(now_ms)
        self.listen_until = now_ms + self.window_ms

    def heard(self, now_ms):
        self._leave_duty(now_ms)

    def _leave_duty(self, now_ms):
        if self.duty_since >= 0:
            self.meter.add(R_RXDC, now_ms - self.duty_since)
            self.duty_since = -1

    def due(self, now_ms, until_ms):
        """Arm the duty cycle if the window is over; returns when the loop
        must wake for this (the window's end) or until_ms."""
        if self.duty_since < 0:
            if now_ms >= self.listen_until:
                self.arm()
                self.duty_since = now_ms
            else:
                return min(until_ms, self.listen_until)
        return until_ms

    def close(self, now_ms):
        self._leave_duty(now_ms)


class NodePower:
    """What main.py's tasks tell about power: the Meter they fill, the TX
    power they send at, and (a board on battery) the Sleeper and DutyListen;
    leaf: this node relays for no one (leaf_quiet, leaf_deaf)."""

    def __init__(self, meter, tx_dbm, sleeper=None, listen=None, leaf=False):
        self.meter = meter
        self.tx_dbm = tx_dbm
        self.sleeper = sleeper
        self.listen = listen
        self.leaf = leaf
        self.preamble = None  # sx126x.PreambleByDestination toward sleepy leaves
        self.txpower = None  # txpower.TxPower ("tx_power_control" in /pen.json), set through self.modem
        self.modem = None

    def sent(self, start_ms, end_ms):
        self.meter.tx(self.tx_dbm, end_ms - start_ms)
        if self.sleeper is not None:
            self.sleeper.sent(end_ms - start_ms)
        if self.listen is not None:
            self.listen.sent(end_ms)

    def heard(self, frame, now_ms):
        self.meter.frames += 1
        if self.listen is not None:
            self.listen.heard(now_ms)
        if self.preamble is not None:
            self.preamble.heard(frame, now_ms)
        if self.txpower is not None:
            snr = getattr(frame, "snr", None)  # lora.RxPacket: dB x4
            if snr is not None:
                self.txpower.heard(frame, snr, now_ms)

    def nap(self, now_ms, until_ms):
        """Light-sleep (self.sleeper is set: a board on battery) until until_ms
        or a wake source; the RX duty cycle is armed first when due."""
        if self.listen is not None:
            until_ms = self.listen.due(now_ms, until_ms)
        return self.sleeper.nap(until_ms)

    def air_extra_for(self, preset):
        """MeshNode.air_extra: the airtime a frame will take beyond the
        preset's preamble (a long preamble toward a sleeping leaf, the rule
        before_send then applies), so the duty cycle decides and counts with
        the real figure; None when no destination is sleepy."""
        pre = self.preamble
        if pre is None:
            return None
        from pen_protocol.airtime import time_on_air_us

        def extra(frame, now_ms):
            want = pre.preamble_for(frame, now_ms)
            if want == pre.preamble:
                return 0
            return time_on_air_us(len(frame), preset.sf, preset.bw_hz, preset.cr, want) - \
                preset.airtime_us(len(frame))
        return extra

    def before_send(self, frame, now_ms, key=None):
        """The frame to put on air, or None: a leaf keeps its beacons off the
        air (leaf_quiet) except its asks for routes (leaf_beacon; key: the
        village's frame key, MeshNode.key)."""
        if self.leaf and leaf_quiet(frame):
            frame = leaf_beacon(frame, key)
            if frame is None:
                return None
        if self.preamble is not None:
            self.preamble.set_for(frame, now_ms)
        if self.txpower is not None:
            self.tx_dbm = self.txpower.set_for(self.modem, frame, now_ms)  # sent() meters it at this power
        return frame

    def lbt(self, channel_busy):
        """MeshNode's listen-before-talk hook, told to the duty cycle: a CAD
        takes the chip out of RX duty cycle (any SPI access wakes it) and
        leaves it in continuous RX, so the next nap arms the duty cycle again."""
        if channel_busy is None or self.listen is None:
            return channel_busy
        listen = self.listen

        def busy(now_ms):
            listen.heard(now_ms)
            return channel_busy(now_ms)
        return busy

    def ignores(self, frame):
        return self.leaf and leaf_deaf(frame)


# A leaf relays for no one. Until MeshNode has a leaf flag (docs/power.md,
# "for mesh.py"), the driver layer makes it so: it never advertises a route
# (its beacons stay off the air, so no neighbour picks it as parent and
# sends it frames it would sleep through) and it ignores offers to "any node
# with a route" (it would take custody, then have to relay).
_T_BEACON = const(0x21)  # pen_protocol.frame.T_BEACON
_ANY_ROUTE = const(0xFFFE)  # pen_node.mesh.ANY_ROUTE
_T_DIGEST = const(0x22)  # pen_protocol.frame.T_DIGEST
# a beacon: header 8, seq 2, metric, parent, flags (routing._beacon_frame), "I heard you" pairs
_METRIC_AT = const(10)
_FLAGS_AT = const(12)
_ASK_ROUND = const(1)  # routing._ASK_ROUND
_NO_ROUTE = const(255)
_TAG_LEN = const(3)  # pen_protocol.frame.TAG_LEN


def leaf_quiet(frame):
    return frame[0] == _T_BEACON


def leaf_beacon(frame, key):
    """What a leaf puts on air of a beacon its routing wants sent: nothing,
    unless the beacon asks for routes (routeless: metric 255; or its parent
    stopped acking and no neighbour it knows is feasible: the ask byte).
    Then the same beacon with metric 255, sealed again with the village key
    (pen_protocol.frame.seal; key None: an unsealed village): "no route
    through me, tell me yours". Every neighbour with a route answers within
    ~2.2 s (routing._beacon_soon), inside the window a leaf listens after its
    own frame, so the sleeping leaf learns its neighbours again instead of
    retrying a parent that never hears it (seed 1 at 200/h: leaf 10 sent 143
    frames to one such parent; its asks had been kept off the air). With
    metric 255 nobody takes it as parent."""
    tag_len = _TAG_LEN if key is not None else 0
    n = len(frame) - tag_len
    if frame[0] != _T_BEACON or n < _FLAGS_AT:
        return None
    # the ask is a bit of the flags byte (its "I heard you" list follows, so not the beacon's length: read by
    # length, every beacon of a leaf whose list was empty asked and none with a list did)
    if frame[_METRIC_AT] != _NO_ROUTE and not (n > _FLAGS_AT and frame[_FLAGS_AT] & _ASK_ROUND):
        return None
    body = bytearray(frame[:n])
    body[_METRIC_AT] = _NO_ROUTE
    if key is None:
        return bytes(body)
    from pen_protocol.frame import seal
    return seal(body, key)


def leaf_deaf(frame):
    return len(frame) > 5 and ((frame[4] << 8) | frame[5]) == _ANY_ROUTE


def wakes_leaves(frame):
    """A receipt digest goes down as a flood (no destination) and names
    leaves' payments: a node with sleepy leaves sends it with the long
    preamble, so a leaf in RX duty cycle catches it outside its window."""
    return frame[0] == _T_DIGEST
