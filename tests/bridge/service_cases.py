"""One table of link-service cases, run on CPython (test_service.py) and
under MicroPython (the same file, imported there). Each case gets a fresh
node and service and returns None when it holds, else what went wrong."""
from pen_protocol import cbor
from pen_protocol import frame as F
from pen_protocol import link as L
from pen_protocol.airtime import PRESETS
from pen_protocol.identity import record_id
from pen_node.journal import Journal
from pen_node.memstorage import MemStorage
from pen_node.mesh import MeshNode
from pen_node.service import LinkService


class Bits:
    def __init__(self):
        self.s = 7

    def getrandbits(self, n):
        self.s = (self.s * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.s >> 7) & ((1 << n) - 1)


REF = b"\x00\x00\x00\x01\x00\x00\x00\x2a"


def use(ref=REF):
    # a USE record's shape (type 10, [ref, product, account], signature)
    return bytes([10]) + cbor.dumps([ref, b"\x12\x34\x56\x78", b"\x12\x34\x56\x79"]) + bytes(64)


def receipt(ref=REF):
    return bytes([11]) + cbor.dumps([ref, bytes(16), b"\x01\x02\x03\x04", 1795000000]) + bytes(64)


def publication(i=0):
    # flooded downlink (a receipt goes only down its payment's path)
    return bytes([12]) + cbor.dumps([b"\x00\x00\x00\x01", "notice %d" % i]) + bytes(64)


def fresh(bridge=True):
    # small rings: the service's own cost is what a 64 KB heap must hold here
    node = MeshNode(9, PRESETS["eu868-sf9"], Journal(MemStorage(4096)), Bits(), is_bridge=bridge,
                    reverse=16, dedup=16, spent_capacity=32)
    return node, LinkService(node)


def frames(data):
    return L.Decoder().feed(data)


def state(node):
    """What a request may change (counters aside: a refusal is counted)."""
    return (sorted(node.journal.live), len(node.spent), sorted(node.pending), len(node.delivered),
            len(node.floods), node.journal.end)


def answer(svc, kind, payload=b"", seq=5):
    out = frames(svc.feed(L.encode(kind, seq, payload), 1000))
    return out


def expect_error(svc, node, wire, reason):
    before = state(node)
    out = frames(svc.feed(wire, 1000))
    if len(out) != 1 or out[0].kind != L.ERROR or out[0].payload[0] != reason:
        return "expected error %s, got %r" % (L.REASONS[reason], out)
    if state(node) != before:
        return "state changed"
    return None


def case_hello():
    node, svc = fresh()
    out = answer(svc, L.HELLO)
    if out[0].kind != L.HELLO | L.RESPONSE or out[0].seq != 5:
        return repr(out)
    h = cbor.loads(out[0].payload)
    return None if h[0] == 9 and h[1] == 1 and h[3] == L.MAX_PAYLOAD else repr(h)


def case_submit_is_custody_then_delivered_event():
    node, svc = fresh()
    out = answer(svc, L.SUBMIT, use())
    if out[0].kind != L.SUBMIT | L.RESPONSE or out[0].payload != record_id(use()):
        return repr(out)
    if len(out) != 2 or out[1].kind != L.EV_DELIVERED or out[1].payload != use():
        return "no delivered event: %r" % out
    return None if len(node.journal.live) == 1 else "not in the journal"


def case_submit_of_a_receipt_is_refused():
    node, svc = fresh()
    return expect_error(svc, node, L.encode(L.SUBMIT, 1, receipt()), L.E_REFUSED)


def case_submit_too_short_is_bad_payload():
    node, svc = fresh()
    return expect_error(svc, node, L.encode(L.SUBMIT, 1, b"\x0a\x80"), L.E_BAD_PAYLOAD)


def case_spent_answers_from_the_village_set():
    node, svc = fresh()
    answer(svc, L.SUBMIT, use())
    got = cbor.loads(answer(svc, L.SPENT, REF)[0].payload)
    other = cbor.loads(answer(svc, L.SPENT, b"\x09" * 8)[0].payload)
    return None if got == [True, 1, False] and other == [False, 0, False] else repr((got, other))


def case_spent_with_a_short_ref_is_bad_payload():
    node, svc = fresh()
    return expect_error(svc, node, L.encode(L.SPENT, 1, b"\x01\x02"), L.E_BAD_PAYLOAD)


def case_status_counts():
    node, svc = fresh()
    answer(svc, L.SUBMIT, use())
    st = {}
    for k, v in cbor.loads(answer(svc, L.STATUS)[0].payload):
        st[k] = v
    return None if st["journal_used"] == 1 and st["link_submits"] == 1 and st["bridge"] == 1 else repr(st)


def case_delivered_ack_drops_it_once():
    node, svc = fresh()
    rid = answer(svc, L.SUBMIT, use())[0].payload
    a = answer(svc, L.DELIVERED_ACK, rid)
    b = answer(svc, L.DELIVERED_ACK, rid)
    if a[0].payload != b"\x01" or b[0].payload != b"\x00" or b[0].kind != L.DELIVERED_ACK | L.RESPONSE:
        return repr((a, b))
    return None if not node.journal.live else "still in the journal"


def case_delivered_ack_with_a_short_id_is_bad_payload():
    node, svc = fresh()
    answer(svc, L.SUBMIT, use())
    return expect_error(svc, node, L.encode(L.DELIVERED_ACK, 1, b"\x01" * 8), L.E_BAD_PAYLOAD)


def case_downlink_goes_on_air():
    node, svc = fresh()
    out = answer(svc, L.DOWNLINK, publication())
    if out[0].kind != L.DOWNLINK | L.RESPONSE:
        return repr(out)
    f = node.next_tx(5000)
    return None if f is not None and svc.stats["link_downlinks"] == 1 else "nothing to send"


def case_downlink_receipt_goes_down_its_payments_path():
    node, svc = fresh()
    node.rev.put(REF, 7)  # the payment came up from node 7
    out = answer(svc, L.DOWNLINK, receipt())
    if out[0].kind != L.DOWNLINK | L.RESPONSE:
        return repr(out)
    f = node.next_tx(5000)
    if f is None:
        return "nothing to send"
    hdr, _ = F.parse(f)
    return None if hdr.dst == 7 and hdr.type == 11 else "sent to %d" % hdr.dst


def case_downlink_receipt_without_a_path_is_kept_off_the_air():
    node, svc = fresh()
    out = answer(svc, L.DOWNLINK, receipt())  # accepted: the PC may mark it sent
    if out[0].kind != L.DOWNLINK | L.RESPONSE:
        return repr(out)
    f = node.next_tx(5000)  # (a bridge's first beacon may be due)
    if f is not None and F.parse(f)[0].type != F.T_BEACON:
        return "sent %r" % f
    return None if not node.floods and not node.pending and node.stats["receipts_dropped"] == 1 else "kept"


def case_downlink_is_refused_while_the_air_is_behind():
    node, svc = fresh()
    from pen_node.downlink import MAX_FLOODS
    for i in range(MAX_FLOODS):
        if answer(svc, L.DOWNLINK, publication(i))[0].kind == L.ERROR:
            return "refused early at %d" % i
    return expect_error(svc, node, L.encode(L.DOWNLINK, 1, publication(99)), L.E_REFUSED)


def case_pending_sends_every_unacked_record_again():
    node, svc = fresh()
    answer(svc, L.SUBMIT, use())
    answer(svc, L.SUBMIT, use(b"\x00\x00\x00\x01\x00\x00\x00\x2b"))
    out = answer(svc, L.PENDING)
    if out[0].kind != L.PENDING | L.RESPONSE or cbor.loads(out[0].payload) != 2:
        return repr(out)
    evs = [f.payload for f in out[1:] if f.kind == L.EV_DELIVERED]
    return None if len(evs) == 2 and use() in evs else repr(out)


def case_pending_of_many_goes_a_few_per_poll():
    node, svc = fresh()
    for i in range(6):
        answer(svc, L.SUBMIT, use(b"\x00\x00\x00\x01\x00\x00\x01" + bytes((i,))))
    out = answer(svc, L.PENDING)
    first = [f for f in out if f.kind == L.EV_DELIVERED]
    if cbor.loads(out[0].payload) != 6 or len(first) != 4 or not svc.busy():
        return repr(out)
    # one not yet re-sent is acked meanwhile: it is not sent again
    sent = [record_id(f.payload) for f in first]
    waiting = [rid for rid in node.journal.live if rid not in sent]
    more = answer(svc, L.DELIVERED_ACK, waiting[0])[1:] + frames(svc.poll(2000))
    more = [f for f in more if f.kind == L.EV_DELIVERED]
    if svc.busy() or len(more) != 1 or record_id(more[0].payload) != waiting[1]:
        return repr(more)
    return None


def case_bridge_requests_at_a_relay_are_not_bridge():
    node, svc = fresh(bridge=False)
    for k, p in ((L.DELIVERED_ACK, bytes(16)), (L.DOWNLINK, receipt()), (L.PENDING, b"")):
        e = expect_error(svc, node, L.encode(k, 1, p), L.E_NOT_BRIDGE)
        if e:
            return e
    return None


def case_unknown_kind():
    node, svc = fresh()
    return expect_error(svc, node, L.encode(0x30, 1), L.E_UNKNOWN_KIND) or \
        expect_error(svc, node, L.encode(L.EV_DELIVERED, 1, use()), L.E_UNKNOWN_KIND)


def case_corrupt_crc_changes_nothing():
    node, svc = fresh()
    bad = bytearray(L.encode(L.SUBMIT, 1, use()))
    bad[-3] ^= 0x01  # in the CRC: COBS still decodes
    return expect_error(svc, node, bytes(bad), L.E_CRC)


def case_truncated_frame():
    node, svc = fresh()
    return expect_error(svc, node, b"\x02\x01\x00", L.E_TRUNCATED)


def case_bad_cobs():
    node, svc = fresh()
    return expect_error(svc, node, b"\x09\x01\x02\x00", L.E_COBS)


def case_oversized_then_recovers():
    node, svc = fresh()
    before = state(node)
    out = b""
    chunk = b"\x01" * 256  # as the link delivers it: a read at a time
    for _ in range(L.MAX_ENCODED // 256 + 2):
        out += svc.feed(chunk, 1000)
    out += svc.feed(b"\x00", 1000)
    got = frames(out)
    if len(got) != 1 or got[0].kind != L.ERROR or got[0].payload[0] != L.E_OVERSIZED or state(node) != before:
        return repr(got)
    out = answer(svc, L.HELLO)
    return None if out[0].kind == L.HELLO | L.RESPONSE else repr(out)


def case_byte_by_byte_and_trailing_junk():
    node, svc = fresh()
    wire = L.encode(L.SUBMIT, 3, use()) + b"\x07\x07"
    out = b""
    for i in range(len(wire)):
        out += svc.feed(wire[i:i + 1], 1000)
    got = frames(out)
    return None if got[0].kind == L.SUBMIT | L.RESPONSE and len(node.journal.live) == 1 else repr(got)


CASES = [(n, f) for n, f in sorted(globals().items()) if n.startswith("case_")]


def run():
    import gc
    failed = 0
    for name, f in CASES:
        gc.collect()  # each case's node and journal are garbage now: one contiguous heap for the next
        r = f()
        if r is not None:
            failed += 1
            print("FAIL", name, r)
    print("cases", len(CASES), "failed", failed)


if __name__ == "__main__":
    run()
