"""The village spent set: token refs this node has heard used or accounted
in authenticated frames (mesh.py drops any frame without the village key's
tag before reading it), so a store can ask "has this token been seen
spent?" without internet.

What it can say: "heard". Not "verified": the node cannot check a user's
Ed25519 signature in time (0.5-1.3 s on an ESP32), and any holder of the
village key can seal a frame. So a store's check treats the answer as
"cannot know yet", never as proof (check.py: INVALID spent-in-village only
for a USE whose signature the store verified itself).

Fixed memory (an IdRing). The oldest refs fall out first, but never one
younger than KEEP_MS: when the set is full of young refs a new one is
refused (counted), so a flood of junk, even sealed by an insider, can
fill the set but cannot flush a real spend out of it within KEEP_MS. Every
ref that fell out or was refused sets `dropped`, which turns a "not seen"
into "unknown", never "unspent": the store's offline check then treats the
token as indeterminable, as the seed requires.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from .ring import IdRing

UNKNOWN = const(0)
USED = const(1)
ACCOUNTED = const(2)
REF_LEN = const(8)
# 512 refs are 5 KB: a village's payments for days
CAPACITY = const(512)
# a heard spend stays at least this long, whatever is heard after it: a
# day covers the store's offline checks until the bridge's CTB round trip
KEEP_MS = const(86400000)
_MINUTE_MS = const(60000)
_STAMP = const(0x10000)  # entries carry the minute they came in, mod 2^16 (45 days)


class SpentSet:
    def __init__(self, capacity=CAPACITY):
        self.ring = IdRing(capacity, REF_LEN, 3)  # value: kind (1) | minute (2)
        self.refused = 0

    def add(self, ref, kind, now_ms):
        """Note ref as `kind` (USED / ACCOUNTED) as heard at now_ms. False
        when refused: the set is full of refs younger than KEEP_MS."""
        ref = bytes(ref)
        if len(ref) != REF_LEN:
            return False
        r = self.ring
        minute = (now_ms // _MINUTE_MS) % _STAMP
        v = r.get(ref)
        if v is not None:
            if kind > v >> 16:  # upgrades only (used -> accounted); keeps its age
                r.put(ref, (kind << 16) | (v & 0xFFFF))
            return True
        if r.count == r.capacity:
            old = r.value_at(r.pos)
            if (minute - (old & 0xFFFF)) % _STAMP < KEEP_MS // _MINUTE_MS:
                self.refused += 1
                return False
        r.put(ref, (kind << 16) | minute)
        return True

    def lookup(self, ref):
        v = self.ring.get(bytes(ref))
        return UNKNOWN if v is None else v >> 16

    def __contains__(self, ref):
        return self.lookup(ref) != UNKNOWN

    def __len__(self):
        return len(self.ring)

    @property
    def dropped(self):
        """Refs forgotten or refused: a "not seen" answer means "unknown"."""
        return self.ring.dropped + self.refused
