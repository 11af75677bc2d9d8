# pen_node.ble under the MicroPython unix port against the aioble double: a
# phone pairs, opens a session and pays over BLE at the 23-byte default MTU
# (20-byte pieces both ways), then another phone with a 185-byte MTU; plain
# and tampered frames are refused. Run by test_ble.py.
import asyncio
import os

import aioble
from pen_protocol import cbor
from pen_protocol import link as L
from pen_protocol import linkauth as A
from pen_protocol import sign
from pen_protocol.airtime import PRESETS
from pen_node.ble import BleLink, _RX
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from pen_node.pairing import LinkAuth, MemStore
from pen_node.service import LinkService


class Bits:
    def getrandbits(self, n):
        return int.from_bytes(os.urandom(4), "big") & ((1 << n) - 1)


node = MeshNode(9, PRESETS["eu868-sf9"], Journal(MemStorage(4096)), Bits(), reverse=16, dedup=16, spent_capacity=32)
auth = LinkAuth(MemStore(), os.urandom)
code = auth.new_code()
ble = BleLink(LinkService(node, auth), "pen-9")
PHONE = bytes(range(32))
USE = bytes([10]) + cbor.dumps([b"\x00\x00\x00\x01\x00\x00\x00\x2a", b"\x12\x34\x56\x78", b"\x12\x34\x56\x79"]) + bytes(64)
T = [0]


async def exchange(phone, wire, decoder, want=1):
    n = phone.conn.mtu - 3
    for i in range(0, len(wire), n):
        phone.write(_RX, wire[i:i + n])
    got = []
    for _ in range(400):
        await asyncio.sleep_ms(2)
        for piece in phone.notified:
            assert len(piece) <= n, "piece of %d bytes at mtu %d" % (len(piece), phone.conn.mtu)
        got += decoder.feed(phone.received())
        if len(got) >= want:
            return got
    raise AssertionError("no answer")


async def sealed(phone, ses, kind, payload=b""):
    outer = await exchange(phone, L.encode(L.SEALED, 0, ses.seal(L.encode(kind, 1, payload))), L.Decoder())
    assert outer[0].kind == L.SEALED | L.RESPONSE, outer
    return L.Decoder().feed(ses.open(outer[0].payload))


async def main():
    asyncio.create_task(ble.serve(lambda: T[0]))
    phone = aioble.Central(mtu_max=None)  # keeps the 23-byte default
    while phone.conn is None:
        await asyncio.sleep_ms(2)
    await asyncio.sleep_ms(5)
    assert phone.conn.mtu == 23
    f = (await exchange(phone, L.encode(L.SUBMIT, 1, USE), L.Decoder()))[0]
    assert (f.kind, f.payload[0]) == (L.ERROR, L.E_UNPAIRED), f
    run = A.Pairing(code, PHONE, os.urandom)
    f = (await exchange(phone, L.encode(L.PAIR_START, 2, run.start()), L.Decoder()))[0]
    fin = run.finish(f.payload)
    f = (await exchange(phone, L.encode(L.PAIR_FINISH, 3, fin), L.Decoder()))[0]
    assert f.kind == L.PAIR_FINISH | L.RESPONSE, f
    nonce = os.urandom(16)
    f = (await exchange(phone, L.encode(L.OPEN, 4, sign.kid(PHONE) + nonce), L.Decoder()))[0]
    ses = A.Session(run.psk, nonce, f.payload[:16], b"phone")
    inner = await sealed(phone, ses, L.SUBMIT, USE)
    assert inner[0].kind == L.SUBMIT | L.RESPONSE and len(inner[0].payload) == 16, inner
    bad = bytearray(L.encode(L.SEALED, 0, ses.seal(L.encode(L.STATUS, 5))))
    bad[8] ^= 0x10
    f = (await exchange(phone, bytes(bad), L.Decoder()))[0]
    assert (f.kind, f.payload[0]) in ((L.ERROR, L.E_AUTH), (L.ERROR, L.E_CRC)), f
    phone.disconnect()
    # a second phone (the same key, as after a restart) with a bigger MTU
    phone2 = aioble.Central(mtu_max=185)
    while phone2.conn is None:
        await asyncio.sleep_ms(2)
    await asyncio.sleep_ms(5)
    assert phone2.conn.mtu == 185
    nonce = os.urandom(16)
    f = (await exchange(phone2, L.encode(L.OPEN, 6, sign.kid(PHONE) + nonce), L.Decoder()))[0]
    ses = A.Session(run.psk, nonce, f.payload[:16], b"phone")
    st = (await sealed(phone2, ses, L.STATUS))[0]
    assert st.kind == L.STATUS | L.RESPONSE and len(st.payload) > 182, len(st.payload)
    print("stats", ble.stats)
    print("ok")


asyncio.run(main())
