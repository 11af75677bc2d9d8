"""A 0x03 byte on the link must not kill the node. On ESP32 the link shares
the REPL's UART, whose driver turns the interrupt character (3 unless
micropython.kbd_intr says otherwise) into KeyboardInterrupt. 0x03 is the
SPENT request's kind and turns up in signatures; before main.repl_uart_link
called kbd_intr(-1), a store asking "is this token spent?" rebooted the node.

Esp32ReplUart below models that driver: a byte equal to the interrupt
character raises KeyboardInterrupt in the reader instead of arriving."""
import asyncio
import sys
import types

import boardpath  # noqa: F401
import pytest

from pen_protocol import link as L, cbor
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from pen_node.service import LinkService
from medium_node import XorShift

REF = bytes([0x03, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03])
WIRE = L.encode(L.SPENT, 3, REF)


class Done(Exception):
    pass


class Esp32ReplUart:
    def __init__(self, data, mp):
        self.data, self.mp = bytearray(data), mp

    def read(self, n):
        if not self.data:
            raise Done
        out = bytearray()
        while self.data and len(out) < n:
            b = self.data.pop(0)
            if b == self.mp.intr_char:
                raise KeyboardInterrupt
            out.append(b)
        return bytes(out)


class StreamReader:
    """MicroPython's asyncio.StreamReader(stream) over a blocking stream."""

    def __init__(self, stream):
        self.s = stream

    async def read(self, n):
        return self.s.read(n)


@pytest.fixture
def board(monkeypatch):
    import main
    mp = types.SimpleNamespace(intr_char=3, const=lambda x: x)
    mp.kbd_intr = lambda c: setattr(mp, "intr_char", c)
    monkeypatch.setitem(sys.modules, "micropython", mp)
    monkeypatch.setattr(main.asyncio, "StreamReader", StreamReader)
    monkeypatch.setattr(main.sys, "stdin", types.SimpleNamespace(buffer=Esp32ReplUart(WIRE, mp)))
    return main, mp


def run_link(main):
    svc = LinkService(MeshNode(2, PRESETS["eu868-sf9"], Journal(MemStorage(8192)), XorShift(1)))
    out = []
    with pytest.raises(Done):
        asyncio.run(main.link_task(svc, lambda: 0, out.append, grace_ms=0))
    return L.Decoder().feed(b"".join(out))


def test_the_wire_really_carries_0x03_bytes():
    assert WIRE.count(3) >= 3


def test_spent_request_with_0x03_bytes_is_answered_not_an_interrupt(board):
    main, mp = board
    (answer,) = run_link(main)
    assert mp.intr_char == -1
    assert answer.kind == L.SPENT + L.RESPONSE and answer.seq == 3
    assert cbor.loads(answer.payload)[0] is False


def test_without_kbd_intr_the_same_bytes_kill_the_link(board, monkeypatch):
    # the regression: the stream taken as it was before the fix
    main, mp = board
    monkeypatch.setattr(main, "repl_uart_link", lambda: main.sys.stdin.buffer)
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(main.link_task(LinkService(MeshNode(2, PRESETS["eu868-sf9"], Journal(MemStorage(8192)),
                                                        XorShift(1))), lambda: 0, lambda d: None, grace_ms=0))


def test_the_repl_answers_ctrl_c_during_the_grace_after_a_reset(board):
    main, mp = board
    assert main.REPL_GRACE_MS >= 2000  # time for `pen board` to interrupt after resetting the board
    task_started = []

    async def go():
        t = asyncio.ensure_future(main.link_task(None, lambda: 0, task_started.append, grace_ms=200))
        await asyncio.sleep(0.05)
        still = mp.intr_char
        t.cancel()
        return still

    assert asyncio.run(go()) == 3  # not yet taken: Ctrl-C still interrupts
