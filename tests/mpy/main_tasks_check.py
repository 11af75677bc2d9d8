"""firmware/main.py's asyncio tasks under the unix port: a bridge and a store,
each main.serve() over an async radio double (await send, async for over
recv_continuous, as lora-async offers), in real time. The store submits one
payment; prints what the bridge got and what the store still holds.

    micropython -X heapsize=192k -m main_tasks_check (default rings: a board runs these)
"""
import asyncio
import time

import main
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from pen_node.radio import RxPacket
from mpykit import Rng

P = PRESETS["eu868-sf9"]
LINKS = {(1, 2): (-90, 20), (2, 1): (-90, 20)}
USE = b"\x0a\x83\x48" + bytes((0, 0, 0, 1, 0, 0, 0, 7)) + b"\x44\x12\x34\x56\x78\x44\x12\x34\x56\x79" + bytes(64)


class AsyncRadio:
    """No asyncio.Queue in MicroPython: a list and an Event."""

    def __init__(self, radios, addr):
        self.radios = radios
        self.addr = addr
        self.inbox = []
        self.ev = asyncio.Event()
        self.sent = 0
        radios[addr] = self

    async def send(self, packet, tx_at_ms=None):
        self.sent += 1
        await asyncio.sleep_ms(P.airtime_us(len(packet)) // 10000)  # a tenth of the airtime
        for a in self.radios:
            link = LINKS.get((self.addr, a))
            if link is not None:
                r = self.radios[a]
                r.inbox.append(RxPacket(packet, time.ticks_ms(), link[1], link[0]))
                r.ev.set()

    def recv_continuous(self):
        return self

    def __aiter__(self):
        return self

    async def __anext__(self):
        while not self.inbox:
            self.ev.clear()
            await self.ev.wait()
        return self.inbox.pop(0)


T0 = time.ticks_ms()


def clock():
    return time.ticks_diff(time.ticks_ms(), T0)


async def village(nodes):
    radios = {}
    tasks = [asyncio.create_task(main.serve(nodes[a], AsyncRadio(radios, a), clock)) for a in (1, 2)]
    # real time (the tasks' own asyncio waits): done in ~1 s, the bound only stops a
    # hung run, so a loaded CI machine cannot turn a slow pass into a failure
    while (not nodes[1].delivered or nodes[2].journal.live) and clock() < 60000:
        await asyncio.sleep_ms(20)
    for t in tasks:
        t.cancel()
    return radios


nodes = {1: MeshNode(1, P, Journal(MemStorage(4096)), Rng(1), is_bridge=True),
         2: MeshNode(2, P, Journal(MemStorage(4096)), Rng(2))}
nodes[2].submit(USE, clock())
radios = asyncio.run(village(nodes))
print("delivered", len(nodes[1].delivered), int(nodes[1].delivered == [USE]), "held", len(nodes[2].journal.live),
      "parent", nodes[2].parent, "frames", radios[1].sent, radios[2].sent, "ms", clock())
