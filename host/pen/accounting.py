"""What a CTB node does after accepting payments: sign an ACCOUNTED receipt
for each newly effective USE of a token not yet accounted (an accounted use is
final: a later USE of the token is evidence, never a second receipt), with
its node key (a member key of role "node"; no other key may sign one). One place, used by the HTTP node and by a bridge's local peer."""
from pen import build as B
from pen_protocol import ctb, records as R


def make_receipts(store, verdicts, node_key, now):
    """The ACCOUNTED Records a CTB node makes for a batch's accepted USEs,
    made and not stored: store is any State (get) that reads the CTB as the batch left it (a
    store's submit_follow passes its batch's overlay, so the receipts go in
    the batch's own transaction)."""
    if node_key is None:
        return []
    out = []
    for v in verdicts:
        rec = v.record
        if v.code != ctb.ACCEPTED or rec is None or rec.type != R.USE:
            continue
        t = store.get(b"T" + rec.fields[0])
        if t is None or ctb.is_accounted(t) or ctb.use_id(ctb.effective_use(t)) != rec.id:
            continue
        out.append(B.accounted(node_key, rec.fields[0], rec.id, int(now)))
    return out
