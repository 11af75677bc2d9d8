"""A leaf's beacons (pen_node.sleep.leaf_beacon): kept off the air unless they
ask for routes, then sent with metric 255 and sealed again; a forged or
malformed beacon is never turned into one. Runs on CPython and the unix port.

    micropython -X heapsize=64k tests/power/leaf_asks_check.py
"""
from pen_protocol import frame as F
from pen_node.sleep import leaf_beacon, NodePower, Meter

KEY = F.net_key(b"village secret for the leaf test")


def beacon(metric, ask=False, key=KEY, seq=0x0102, parent=7, heard=()):
    # routing._beacon_frame's layout: seq, metric, parent, flags (bit 0: ask for a round), then an
    # "I heard you" pair (low address byte, SNR margin + 64) per neighbour that may take us as parent
    payload = bytes((seq >> 8, seq & 255, metric, parent, 1 if ask else 0))
    for a in heard:
        payload += bytes((a, 70))
    f = F.pack(F.Header(F.T_BEACON, 9, F.BROADCAST, 9, 0, 0), payload)
    return F.seal(f, key) if key is not None else f


def check():
    # an advertisement (a route through the leaf) stays off the air, sealed or not
    assert leaf_beacon(beacon(3), KEY) is None
    assert leaf_beacon(beacon(3, key=None), None) is None
    # routeless: the retraction goes as it is (already metric 255), sealed with the key
    f = beacon(255)
    got = leaf_beacon(f, KEY)
    assert got == f and F.unseal(got, KEY) == len(f) - F.TAG_LEN
    # a route gone bad (the ask byte): the same beacon, metric 255, resealed
    got = leaf_beacon(beacon(40, ask=True), KEY)
    assert got == beacon(255, ask=True) and F.unseal(got, KEY) > 0
    assert got[10] == 255 and got[12] == 1 and got[8:10] == b"\x01\x02"  # seq kept, ask kept
    assert leaf_beacon(beacon(40, ask=True, key=None), None) == beacon(255, ask=True, key=None)
    # with its "I heard you" list: the ask is the flag, not the beacon's length (read by length, a leaf whose
    # list was empty asked with every beacon and one with a list never did: 93 retries to one parent)
    assert leaf_beacon(beacon(40, heard=(3, 5)), KEY) is None
    assert leaf_beacon(beacon(40, key=None), None) is None
    got = leaf_beacon(beacon(40, ask=True, heard=(3, 5)), KEY)
    assert got == beacon(255, ask=True, heard=(3, 5)) and got[13:17] == bytes((3, 70, 5, 70))
    # the old payload without flags (4 bytes): an ask only when routeless
    old = F.seal(F.pack(F.Header(F.T_BEACON, 9, F.BROADCAST, 9, 0, 0), bytes((1, 2, 40, 7))), KEY)
    assert leaf_beacon(old, KEY) is None
    # not a beacon, or too short to be one: never sent as an ask
    use = F.pack(F.Header(10, 9, 3, 9, 0, 0), b"x" * 20)
    assert leaf_beacon(F.seal(use, KEY), KEY) is None
    assert leaf_beacon(bytes((F.T_BEACON, 0, 0, 9, 255, 255, 0, 9, 0, 1, 255)), None) is None
    # the board's path: NodePower.before_send on a leaf and on a relay
    leaf = NodePower(Meter(), 22, leaf=True)
    relay = NodePower(Meter(), 22)
    assert leaf.before_send(beacon(3), 0, KEY) is None
    assert leaf.before_send(beacon(40, ask=True), 0, KEY) == beacon(255, ask=True)
    assert relay.before_send(beacon(3), 0, KEY) == beacon(3)
    assert leaf.before_send(F.seal(use, KEY), 0, KEY) == F.seal(use, KEY)
    print("leaf asks ok")


check()
