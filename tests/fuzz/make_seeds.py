"""Writes the seed inputs of tests/fuzz/corpus (run once; atheris adds what
it finds beside them). Each seed is one_input's format: a mode byte, then
(op, length, frame, time step) groups."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_node as Z  # noqa: E402
from fuzz_node import F, L  # noqa: E402

ACC = b"\x0b\x84\x48" + bytes(8) + b"\x50" + bytes(16) + b"\x44\x01\x02\x03\x04\x1a\x65\x53\xf1\x00" + bytes(64)
# a receipt digest (pen_protocol.digest): two entries, the first the ref of ACC above
DIG = b"\x22\x0a\x0b\x0c\x0d\x6a\xfd\x3a\x80" + bytes(8) + b"\x01\x02\x03\x04" + bytes(7) + b"\x01" \
    + b"\x05\x06\x07\x08" + bytes(64)


def step(op, frame, dt=1):
    frame = bytes(frame)
    assert len(frame) < 256
    return bytes((op, len(frame))) + frame + bytes((dt,))


def seeds():
    use = F.record_frame(Z.USE, 3, Z.ME, 3)
    sent = F.pack(F.Header(10, Z.ME, 1, Z.ME, 7), Z.USE[1:])
    bundle = F.bundle_frame(F.Header(F.T_BUNDLE, 3, Z.ME, 3, 3), [(3, 10, Z.USE[1:]), (4, 10, Z.USE[1:])])
    frags = F.fragment(b"\x0c" + bytes(400), 1, F.BROADCAST, 1, 5, 3)
    return {
        "kill-raw": step(0, bytes.fromhex("24000005ffff000500010205")),
        "kill-sealed": step(1, bytes.fromhex("24000005ffff000500010205")),
        "use-to-me": step(1, use),
        "use-forged": step(0, use),
        "ack-of-mine": step(1, F.ack_frame([F.frame_id(sent)], 1, Z.ME), 40),
        "beacon": step(1, Z.BEACON),
        "bundle": step(1, bundle),
        "receipt-down": step(1, F.record_frame(ACC, 1, Z.ME, 1)),
        "receipt-flood": step(1, F.record_frame(ACC, 1, F.BROADCAST, 1, 5)),
        "fragments": b"".join(step(1, f[:240]) for f in frags),
        "link-submit": step(3, bytes((L.SUBMIT,)) + Z.USE),
        "link-spent": step(3, bytes((L.SPENT,)) + bytes(8)),
        "bridge-downlink": b"\x01" + step(3, bytes((L.DOWNLINK,)) + ACC),
        "digest-flood": step(1, F.pack(F.Header(F.T_DIGEST, 1, F.BROADCAST, 1, 5), DIG[1:])),
        "digest-truncated": step(1, F.pack(F.Header(F.T_DIGEST, 1, F.BROADCAST, 1, 5), DIG[1:-7])),
        "bridge-downlink-digest": b"\x01" + step(3, bytes((L.DOWNLINK,)) + DIG),
    }


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    for name, data in seeds().items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(b"\x00" + data if not name.startswith("bridge") else data)
