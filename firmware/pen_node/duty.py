"""Duty-cycle and dwell-time law, enforced before every transmission.

EU868 sub-bands allow a fraction of each hour on air per device (1 % on
868.0-868.6 MHz, 10 % on 869.4-869.65 MHz); relayed frames count against the
relaying node. US915 narrow channels allow at most 400 ms per transmission
(dwell). The budget is kept over a rolling hour in one-minute buckets (60
integers, no per-frame list), counting the current minute whole, which errs
on the side of the law.

Priorities: payments and acks may use the whole budget; votation traffic and
route beacons stop at 90 %; receipts, publications and digests at 70 %, so the
last part of the hour is always there for payments.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

P_PAYMENT = const(0)  # USE, link acks
P_VOTE = const(1)  # votation records, beacons
P_BULK = const(2)  # receipts, publications, digests, everything else
_SHARE = (100, 90, 70)  # percent of the budget each priority may reach
_BUCKETS = const(60)
_BUCKET_MS = const(60000)


class Window:
    """A rolling window of `count` buckets of `width_ms` each (a fixed list of
    ints, no per-frame entries). The current bucket counts whole, so a sum
    over the window errs high: on the side of the law."""

    def __init__(self, count, width_ms):
        self.count = count
        self.width_ms = width_ms
        self.buckets = [0] * count
        self.cur = 0  # index of the current bucket since time 0

    def advance(self, now_ms):
        c = now_ms // self.width_ms
        if c - self.cur >= self.count:
            for i in range(self.count):
                self.buckets[i] = 0
        else:
            while self.cur < c:
                self.cur += 1
                self.buckets[self.cur % self.count] = 0
        self.cur = c

    def add(self, value, now_ms):
        self.advance(now_ms)
        self.buckets[self.cur % self.count] += value

    def total(self, now_ms):
        self.advance(now_ms)
        return sum(self.buckets)


class DutyCycle(Window):
    def __init__(self, duty_permille, dwell_ms=0):
        Window.__init__(self, _BUCKETS, _BUCKET_MS)  # airtime in us per minute
        self.duty_permille = duty_permille  # 0: no duty-cycle limit
        self.dwell_ms = dwell_ms  # 0: no dwell limit
        self.total_us = 0  # airtime ever spent (for stats)

    def budget_us(self):
        return self.duty_permille * 3600 * 1000  # per-mille of an hour in us

    def used_us(self, now_ms):
        return self.total(now_ms)

    def allows(self, airtime_us, now_ms, priority=P_PAYMENT):
        """May a frame of this airtime go now?"""
        if self.dwell_ms and airtime_us > self.dwell_ms * 1000:
            return False
        if not self.duty_permille:
            return True
        limit = self.budget_us() * _SHARE[priority] // 100
        return self.used_us(now_ms) + airtime_us <= limit

    def wait_ms(self, airtime_us, now_ms, priority=P_PAYMENT):
        """How long until allows() can be true (0 if now; -1 if never, i.e.
        the frame breaks the dwell limit)."""
        if self.dwell_ms and airtime_us > self.dwell_ms * 1000:
            return -1
        if self.allows(airtime_us, now_ms, priority):
            return 0
        limit = self.budget_us() * _SHARE[priority] // 100
        used = self.used_us(now_ms)
        # oldest buckets expire first
        for k in range(1, _BUCKETS + 1):
            used -= self.buckets[(self.cur + k) % _BUCKETS]
            if used + airtime_us <= limit:
                return (self.cur + k) * _BUCKET_MS - now_ms
        return _BUCKETS * _BUCKET_MS

    def spend(self, airtime_us, now_ms):
        self.add(airtime_us, now_ms)
        self.total_us += airtime_us

    def duty(self, now_ms):
        """Fraction of the rolling hour used, in per-mille."""
        return self.used_us(now_ms) * 1000 // (3600 * 1000 * 1000)


_LOAD_BUCKETS = const(6)
_LOAD_BUCKET_MS = const(10000)  # six 10 s buckets: the last minute


class ChannelLoad(Window):
    """How busy the channel sounded over the last minute: airtime of the
    frames this node heard, per mille of the time. Not law, a courtesy: a
    node holds back what can wait (receipts) while the air is busy with
    what cannot (payments and their acks)."""

    def __init__(self):
        Window.__init__(self, _LOAD_BUCKETS, _LOAD_BUCKET_MS)  # airtime in us per 10 s

    def permille(self, now_ms):
        return self.total(now_ms) // (_LOAD_BUCKETS * _LOAD_BUCKET_MS)
