"""A node that no frame can stop (issue 10, item 8): malformed frames become
a counted refusal, never an exception; main.py's tasks survive whatever a
step raises. The MicroPython side is tests/mpy/node_kill_check.py."""
import asyncio

import fwpath  # noqa: F401  (protocol/ and firmware/ on the path)
import pytest

from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from mpykit import ListRadio
from medium_node import XorShift
from meshkit import beacon, use_record

P = PRESETS["eu868-sf9"]
# a bundle broadcast whose one entry claims a 2-byte record and carries one:
# at a151bf1 _on_broadcast raised on it and main.py's rx task died with it
NODE_KILL = bytes.fromhex("24000005ffff000500010205")
# the same bundle addressed to the node (custody path)
NODE_KILL_UNICAST = bytes.fromhex("240000050002000500010205")


def node(addr=2, **kw):
    return MeshNode(addr, P, Journal(MemStorage(8192)), XorShift(addr), **kw)


def test_the_node_kill_broadcast_is_refused_and_the_node_carries_on():
    n = node()
    n.on_frame(NODE_KILL, -80, 20, 1000)  # used to raise FrameError("not-a-record")
    assert n.stats["rx_bad"] == 1 and n.floods == [] and n.events == []
    n.on_frame(beacon(1, 1, 0), -80, 20, 2000)
    assert n.parent == 1  # still hears and routes


def test_a_malformed_bundle_sent_to_the_node_is_refused_and_not_acked():
    n = node()
    n.on_frame(beacon(1, 1, 0), -80, 20, 0)
    n.on_frame(NODE_KILL_UNICAST, -80, 20, 1000)
    assert n.stats["rx_bad"] == 1 and n.acks == [] and n.pending == {}


@pytest.mark.parametrize("hexframe, reason", [
    ("0a00", "truncated"), ("0000000100020001ff", "bad-type"), ("0680000100020001ff", "bad-ctl"),
    ("0ac0000100020001310009", "bad-ctl"),
    ("0a0b000100020001ff", "bad-hops"), ("0a00000100020001", "empty-payload"),
    ("0a40000100020001310009", "bad-fragment"), ("0a4000010002000131", "truncated")])
def test_frame_read_returns_the_reason_and_never_raises(hexframe, reason):
    hdr = F.Header(0, 0, 0, 0)
    assert F.read(bytes.fromhex(hexframe), hdr) == reason
    with pytest.raises(F.FrameError) as e:  # parse() keeps raising for callers that want it
        F.parse(bytes.fromhex(hexframe))
    assert e.value.reason == reason


def test_record_of_a_control_frame_is_none_not_an_exception():
    hdr, payload = F.parse(NODE_KILL)
    assert F.record_of(hdr, payload) is None


class Faulty(MeshNode):
    """A node whose first on_frame / next_tx raise, as a bug would."""
    rx_faults = 1
    tx_faults = 1

    def on_frame(self, frame, rssi, snr, now_ms):
        if self.rx_faults:
            self.rx_faults -= 1
            raise ValueError("a bug in on_frame")
        return MeshNode.on_frame(self, frame, rssi, snr, now_ms)

    def next_tx(self, now_ms):
        if self.tx_faults:
            self.tx_faults -= 1
            raise MemoryError()
        return MeshNode.next_tx(self, now_ms)


def test_main_rx_task_survives_a_step_that_raises_and_handles_the_next_frames():
    import main
    n = Faulty(2, P, Journal(MemStorage(8192)), XorShift(2))
    radio = ListRadio([use_record(1), NODE_KILL, beacon(1, 1, 0)])
    asyncio.run(main.rx_task(n, radio, lambda: 1000, asyncio.Event()))
    assert n.stats["task_errors"] == 1 and main.last_error == ("rx", "ValueError('a bug in on_frame')")
    assert n.stats["rx_bad"] == 1 and n.parent == 1  # the kill frame refused, the beacon heard


def test_main_tx_task_survives_a_step_that_raises_and_sends_afterwards():
    import main
    n = Faulty(2, P, Journal(MemStorage(8192)), XorShift(2))
    n.rx_faults = 0
    n.on_frame(beacon(1, 1, 0), -80, 20, 0)
    assert n.submit(use_record(1), 0)
    radio = ListRadio([])
    t = [0]

    def clock():
        t[0] += 50
        return t[0]

    async def run():
        task = asyncio.ensure_future(main.tx_task(n, radio, clock, asyncio.Event()))
        while not radio.sent and t[0] < 60000:
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    assert n.stats["task_errors"] == 1 and main.last_error[0] == "tx"
    assert radio.sent and radio.sent[0][0] in (10, F.T_BUNDLE, F.T_BEACON)  # the node still transmits


@pytest.mark.micropython
def test_the_node_kill_frame_is_refused_under_micropython_and_the_rx_task_survives(mpy):
    out = mpy("", heap="160k", module="node_kill_check").split()  # main.py and every module: ~75 KB of bytecode
    assert out == ["direct", "1", "1", "task", "1", "1", "1", "rx"]
