"""The village spent set: token refs this node has seen used or accounted,
so a store can ask "is this token spent?" without internet.

Fixed memory (an IdRing): the oldest refs fall out first; a ref that fell
out makes the answer "unknown", never "unspent": the store's offline check
then treats the token as indeterminable, as the seed requires.
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
# 512 refs are 4.5 KB: a village's payments for days
CAPACITY = const(512)


class SpentSet:
    def __init__(self, capacity=CAPACITY):
        self.ring = IdRing(capacity, REF_LEN, 1)

    def add(self, ref, kind):
        ref = bytes(ref)
        if len(ref) == REF_LEN and kind > self.ring.get(ref, UNKNOWN):
            self.ring.put(ref, kind)

    def lookup(self, ref):
        return self.ring.get(bytes(ref), UNKNOWN)

    def __contains__(self, ref):
        return self.lookup(ref) != UNKNOWN

    def __len__(self):
        return len(self.ring)

    @property
    def dropped(self):
        return self.ring.dropped
