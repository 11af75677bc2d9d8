"""Under the unix port: the node-kill frame (issue 10, item 8) is refused and
the node carries on, and main.py's rx task survives a step that raises.
Prints figures tests/firmware/test_frames_from_air.py checks.

    micropython -X heapsize=160k -m node_kill_check
"""
import asyncio

import main
from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from mpykit import Rng, ListRadio

P = PRESETS["eu868-sf9"]
KILL = bytes((0x24, 0, 0, 5, 0xFF, 0xFF, 0, 5, 0, 1, 2, 5))
BEACON = F.pack(F.Header(F.T_BEACON, 1, F.BROADCAST, 1, 0, 0), bytes((0, 1, 0, 0)))


class Faulty(MeshNode):
    faults = 1

    def on_frame(self, frame, rssi, snr, now_ms):
        if self.faults:
            self.faults -= 1
            raise ValueError("bug")
        return MeshNode.on_frame(self, frame, rssi, snr, now_ms)


SMALL = {"dedup": 32, "reverse": 32, "spent_capacity": 64}  # rings sized as the 64 KB node loop's
n = MeshNode(2, P, Journal(MemStorage(4096)), Rng(2), **SMALL)
n.on_frame(KILL, -80, 20, 1000)
n.on_frame(BEACON, -80, 20, 2000)
print("direct", n.stats["rx_bad"], n.parent)
n = None
f = Faulty(3, P, Journal(MemStorage(4096)), Rng(3), **SMALL)
asyncio.run(main.rx_task(f, ListRadio([BEACON, KILL, BEACON]), lambda: 1000, asyncio.Event()))
print("task", f.stats.get("task_errors", 0), f.stats["rx_bad"], f.parent, main.last_error[0])
