"""Done-when, over a pty: a store PC pairs with a unix-port node by the code
on its console, pays through it, and gets a receipt it verifies against the
CTB node key; unpaired, tampered and replayed frames are refused."""
import pytest

from pen.bridge.serial import LinkClient, ask
from pen.storeclient import ACCOUNTED, Outbox, StoreClient
from pen.transport.secure import LinkRefused, open_session, pair
from pen_protocol import link as L
from kit import AirBridge, CTB_KEY, USER, pairing_code, start_node, stop, use

pytestmark = pytest.mark.micropython


@pytest.fixture
def village(tmp_path):
    air = AirBridge()
    port, proc, console = start_node(tmp_path, "--pair", str(tmp_path / "pair.cbor"), "--air", str(air.port))
    yield air, port, proc, console
    stop(proc)
    air.close()


def test_store_pays_over_a_pty_and_verifies_the_receipt(village, tmp_path):
    air, port, proc, console = village
    paired = pair(port, pairing_code(console), USER.public_key)
    client = open_session(port, paired)
    u = use(1)
    air.users[u.fields[0]] = USER.public_key
    sc = StoreClient(port, Outbox(tmp_path / "outbox.sqlite"), [CTB_KEY.public_key], client=client)
    p = sc.pay(u.raw, wait_s=40)
    assert p.state == ACCOUNTED and p.receipt == air.receipts[0]
    assert sc.check(u.fields[0]).kind == 2  # the receipt passed the node: its spent set says accounted
    assert [q.state for q in sc.receipts()] == [ACCOUNTED]


def test_unpaired_peer_is_refused_and_nothing_reaches_the_node(village):
    air, port, proc, console = village
    f = ask(port, L.SUBMIT, use(2).raw)
    assert f.kind == L.ERROR and f.payload[0] == L.E_UNPAIRED
    f = ask(port, L.SPENT, use(2).fields[0])
    assert f.kind == L.ERROR and f.payload[0] == L.E_UNPAIRED
    assert ask(port, L.HELLO).kind == L.HELLO | L.RESPONSE  # HELLO is served in the clear


def test_tampered_and_replayed_sealed_frames_are_refused(village):
    air, port, proc, console = village
    paired = pair(port, pairing_code(console), USER.public_key)
    client = open_session(port, paired)
    seq, data = client.request(L.STATUS)
    raw = L.cobs_decode(data[:-1])
    bad = bytearray(raw)
    bad[10] ^= 1  # one bit of the ciphertext
    tampered = L.encode(bad[0], bad[1], bytes(bad[2:-2]))
    assert _outer(port, tampered) == [L.E_AUTH]
    port.write(data)
    assert _first_sealed(port, client).kind == L.STATUS | L.RESPONSE
    assert _outer(port, data) == [L.E_REPLAY]


def test_a_wrong_code_fails_and_the_next_try_must_wait(village):
    air, port, proc, console = village
    code = pairing_code(console)
    with pytest.raises(LinkRefused) as e:
        pair(port, "%06d" % ((int(code) + 1) % 1000000), USER.public_key)
    assert e.value.reason == L.E_PAIR
    with pytest.raises(LinkRefused) as e:  # the right code, at once: too soon (the count runs out in test_linkauth)
        pair(port, code, USER.public_key)
    assert e.value.reason == L.E_LOCKED and "too soon" in str(e.value)


def _outer(port, data):
    c = LinkClient()
    port.write(data)
    out = []
    for _ in range(40):
        out += [f.payload[0] for f in c.feed(port.read(0.05)) if isinstance(f, L.Frame) and f.kind == L.ERROR]
        if out:
            return out
    return out


def _first_sealed(port, client):
    for _ in range(40):
        for f in client.feed(port.read(0.05)):
            if isinstance(f, L.Frame):
                return f
    raise AssertionError("no answer")
