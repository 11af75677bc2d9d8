"""Small doubles shared by the MicroPython check scripts and their CPython
twins: a getrandbits source and a radio that replays a list of frames."""


class Rng:
    """getrandbits from an LCG (medium_node's XorShift costs 2 KB of heap to
    import; the node only needs some bits)."""

    def __init__(self, seed):
        self.s = seed

    def getrandbits(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 7) & ((1 << n) - 1)


class ListRadio:
    """recv_continuous() over a fixed list of frames, then the stream ends;
    send() records what the node put on air."""

    def __init__(self, frames):
        from pen_node.radio import RxPacket  # imported here: Rng's users need no radio (heap)
        self.frames = [RxPacket(f, 0, 20, -80) for f in frames]
        self.sent = []

    def recv_continuous(self):
        return self

    def __aiter__(self):
        return self

    async def __anext__(self):
        import asyncio
        if not self.frames:
            raise StopAsyncIteration
        await asyncio.sleep(0)
        return self.frames.pop(0)

    async def send(self, packet, tx_at_ms=None):
        self.sent.append(bytes(packet))
