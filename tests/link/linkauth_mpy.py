# Pairing and a sealed SUBMIT under the MicroPython unix port, node and phone
# in one process on a 64 KB heap (run by test_linkauth_mpy.py).
import os
import time

from pen_protocol import cbor
from pen_protocol import link as L
from pen_protocol import linkauth as A
from pen_protocol import sign
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from pen_node.pairing import LinkAuth, MemStore
from pen_node.service import LinkService


class Bits:
    def getrandbits(self, n):
        return int.from_bytes(os.urandom(4), "big") & ((1 << n) - 1)


def one(svc, kind, payload):
    return L.Decoder().feed(svc.feed(L.encode(kind, 1, payload), 1000))


node = MeshNode(9, PRESETS["eu868-sf9"], Journal(MemStorage(4096)), Bits(), reverse=16, dedup=16, spent_capacity=32)
store = MemStore()
svc = LinkService(node, LinkAuth(store, os.urandom))
code = svc.auth.new_code()

phone_pk = bytes(range(32))
t = time.ticks_ms()
run = A.Pairing(code, phone_pk, os.urandom)
start = run.start()
ans = one(svc, L.PAIR_START, start)[0]
fin = run.finish(ans.payload)
assert one(svc, L.PAIR_FINISH, fin)[0].kind == L.PAIR_FINISH | L.RESPONSE
print("pair_ms", time.ticks_diff(time.ticks_ms(), t))
# a reboot: the pairing is in storage
svc = LinkService(node, LinkAuth(store, os.urandom))
nonce = os.urandom(16)
f = one(svc, L.OPEN, sign.kid(phone_pk) + nonce)[0]
ses = A.Session(run.psk, nonce, f.payload[:16], b"phone")
use = bytes([10]) + cbor.dumps([b"\x00\x00\x00\x01\x00\x00\x00\x2a", b"\x12\x34\x56\x78", b"\x12\x34\x56\x79"]) + bytes(64)
t = time.ticks_ms()
for i in range(20):
    out = one(svc, L.SEALED, ses.seal(L.encode(L.SUBMIT, i, use)))
    inner = L.Decoder().feed(ses.open(out[0].payload))
    assert inner[0].kind == L.SUBMIT | L.RESPONSE, inner
print("sealed_submit_ms", time.ticks_diff(time.ticks_ms(), t) / 20)
bad = bytearray(ses.seal(L.encode(L.STATUS, 1)))
bad[6] ^= 1
assert one(svc, L.SEALED, bytes(bad))[0].payload[0] == L.E_AUTH
print("ok")
