"""The village spent set: token refs this node has seen used or accounted,
so a store can ask "is this token spent?" without internet.

Bounded ring (a node's RAM is the limit): the oldest refs fall out first.
A ref that fell out makes the answer "unknown", never "unspent": the store's
offline check then treats the token as indeterminable, as the seed requires.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

UNKNOWN = const(0)
USED = const(1)
ACCOUNTED = const(2)
# 512 refs x (8 B key + dict slot) is ~12 KB: a village's payments for days
CAPACITY = const(512)


class SpentSet:
    def __init__(self, capacity=CAPACITY):
        self.capacity = capacity
        self.kind = {}
        self.ring = [None] * capacity
        self.pos = 0
        self.dropped = 0

    def add(self, ref, kind):
        ref = bytes(ref)
        old = self.kind.get(ref)
        if old is not None:
            if kind > old:
                self.kind[ref] = kind
            return
        evict = self.ring[self.pos]
        if evict is not None:
            del self.kind[evict]
            self.dropped += 1
        self.ring[self.pos] = ref
        self.pos = (self.pos + 1) % self.capacity
        self.kind[ref] = kind

    def lookup(self, ref):
        return self.kind.get(bytes(ref), UNKNOWN)

    def __contains__(self, ref):
        return bytes(ref) in self.kind

    def __len__(self):
        return len(self.kind)
