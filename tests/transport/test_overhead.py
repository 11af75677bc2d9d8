"""What each transport adds to one payment (a USE up, its record id back, the
ACCOUNTED receipt down), byte for byte from the encoders; printed with -s,
and the figures docs/store.md quotes are asserted so they cannot drift.

    .venv/bin/pytest -q -s tests/transport/test_overhead.py"""
import math
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "link"))
from kit import CTB_KEY, use  # noqa: E402
from pen import build as B  # noqa: E402
from pen.transport import meshtastic as M  # noqa: E402
from pen_protocol import link as L, linkauth as A  # noqa: E402

MESHTASTIC_HEADER = 16  # clear header on air (REFERENCE.md); the Data protobuf adds ~4 more, encrypted


def frames():
    u = use(1)
    r = B.accounted(CTB_KEY, u.fields[0], u.id, 1795000000)
    plain = [L.encode(L.SUBMIT, 1, u.raw), L.encode(L.SUBMIT | L.RESPONSE, 1, u.id), L.encode(L.EV_RECEIPT, 1, r.raw)]
    return len(u.raw) + len(r.raw), plain


def sealed(plain):
    s = A.Session(bytes(32), bytes(16), bytes(16), b"phone")
    return [L.encode(L.SEALED, 0, s.seal(f)) for f in plain]


def ble(wire, mtu):
    return sum(len(f) + 3 * math.ceil(len(f) / (mtu - 3)) for f in wire)


def meshtastic(wire):
    out = 0
    for f in wire:
        n = math.ceil(len(f) / M.CHUNK)
        out += len(f) + n * (M.HEADER + MESHTASTIC_HEADER) + 5 + MESHTASTIC_HEADER  # fragments + one ack
    return out


def test_bytes_each_transport_adds_per_payment():
    payload, plain = frames()
    rows = {
        "serial/pty/tcp, plain": sum(map(len, plain)),
        "serial/pty/tcp, sealed": sum(map(len, sealed(plain))),
        "BLE sealed, MTU 23": ble(sealed(plain), 23),
        "BLE sealed, MTU 247": ble(sealed(plain), 247),
        "Meshtastic (on air)": meshtastic(plain),
    }
    print("\nrecords: %d B (USE + receipt)" % payload)
    for k, v in rows.items():
        print("%-26s %4d B on the wire, %4d B added" % (k, v, v - payload))
    added = {k: v - payload for k, v in rows.items()}
    # framing: kind, seq, CRC, COBS, delimiter (+ the 16-byte id answered)
    assert added["serial/pty/tcp, plain"] == 3 * 6 + 16
    # sealing: each frame inside another (ctr 4, tag 16, kind, seq, CRC, COBS, zero)
    assert added["serial/pty/tcp, sealed"] - added["serial/pty/tcp, plain"] == 3 * (A.SEAL_OVERHEAD + 6)
    assert added["BLE sealed, MTU 23"] > added["BLE sealed, MTU 247"]
