"""Several real MeshNodes in one MicroPython process with a small heap
(tests/mpy/village_heap_check.py): signed payments from the stores reach the
bridge once each through the relays, and every receipt comes back. One
node's whole loop runs in 64 KB (test_heap.py); here several share one
64-bit process, so the heap is the smallest that holds them (measured)."""
import fwpath  # noqa: F401
import pytest

from conftest import run_micropython
from pen import build as B
from pen.keys import Signer
from pen_protocol import records as R

USER = Signer(bytes(range(32)), "store customer")
ISSUER = Signer(bytes(range(1, 33)), "council")
NODE = Signer(bytes(range(2, 34)), "ctb node")
PAYMENTS = 24


def records_file(path, n):
    lines = [str(n)]
    for i in range(n):
        use = B.use(USER, R.make_ref(ISSUER.kid, 100 + i), "40141600", "50100000")
        acc = B.accounted(NODE, use.fields[0], use.id, 1700000000 + i)
        lines.append(use.raw.hex() + " " + acc.raw.hex())
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.micropython
# 8 KB more than before the frame authentication and the split (conftest.NODE_HEAP says why)
@pytest.mark.parametrize("nodes,heap", [("3", "88k"), ("5", "104k")])
def test_village_of_real_nodes_delivers_signed_payments_and_receipts_in_a_small_heap(tmp_path, nodes, heap):
    recs = records_file(tmp_path / "records.txt", PAYMENTS)
    out = run_micropython("", heap=heap, module="village_heap_check", args=[str(tmp_path), recs, nodes])
    first, second = out.strip().split("\n")[-2:]
    w = first.split()
    figures = dict(zip(w[0::2], [int(x) for x in w[1::2]]))
    assert figures["delivered"] == figures["unique"] == PAYMENTS  # each exactly once
    assert figures["receipts"] == PAYMENTS and figures["late"] == 0
    assert figures["minutes"] >= 10  # simulated minutes of traffic, journals turning over
    mods, built, peak, free = [int(x) for x in second.split()[1:]]
    print("%s nodes in %s: modules %d B, nodes %d B, peak %d B, free at end %d B" % (
        nodes, heap, mods, built, peak, free))
    assert built < int(nodes) * 7 * 1024
