"""IdRing: a fixed-size set (or small map) of byte-string ids, the oldest
falling out first. One preallocated bytearray of ids and one of values,
searched with bytearray.find: no per-entry objects and no dict that grows
and rehashes, so its memory is known at boot on a 64 KB heap. Used for
duplicate suppression, remembered paths, the spent set."""


class IdRing:
    def __init__(self, capacity, width, value_bytes=0):
        self.capacity = capacity
        self.width = width
        self.vb = value_bytes
        self.ids = bytearray(capacity * width)
        self.used = bytearray(capacity)
        self.vals = bytearray(capacity * value_bytes)
        self.pos = 0
        self.count = 0
        self.dropped = 0

    def index(self, key):
        w = self.width
        start = 0
        while True:
            i = self.ids.find(key, start)
            if i < 0:
                return -1
            if i % w == 0 and self.used[i // w]:
                return i // w
            # on to the next slot boundary: a key found across two slots, or
            # in a free slot, says nothing (an all-zero key in a fresh ring
            # matched at every byte: capacity x width steps, now capacity)
            start = (i // w + 1) * w

    def __contains__(self, key):
        return len(key) == self.width and self.index(key) >= 0

    def __len__(self):
        return self.count

    def get(self, key, default=None):
        if len(key) != self.width:
            return default
        i = self.index(key)
        if i < 0:
            return default
        return self.value_at(i) if self.vb else True

    def value_at(self, slot):
        """The value stored in a slot (the oldest entry is at slot pos)."""
        v = 0
        for b in self.vals[slot * self.vb:(slot + 1) * self.vb]:
            v = (v << 8) | b
        return v

    def put(self, key, value=0):
        """Insert or update; returns the slot."""
        if len(key) != self.width:
            raise ValueError("id width")
        i = self.index(key)
        if i < 0:
            i = self.pos
            if self.used[i]:
                self.dropped += 1
            else:
                self.count += 1
            self.ids[i * self.width:(i + 1) * self.width] = key
            self.used[i] = 1
            self.pos = (self.pos + 1) % self.capacity
        for k in range(self.vb):
            self.vals[i * self.vb + k] = (value >> (8 * (self.vb - 1 - k))) & 255
        return i

    def remove(self, key):
        i = self.index(key) if len(key) == self.width else -1
        if i >= 0:
            self.used[i] = 0
            self.count -= 1
