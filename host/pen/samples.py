"""A small, deterministic sample economy: one record of every type, all
valid together. Feeds `pen bench sizes`, the golden vectors and tests."""
from pen import build as B
from pen.keys import Signer
from pen_protocol import ctb, records as R

T0 = 1795000000  # 2026-11-18, a fixed time so the bytes never change


def keys():
    return {n: Signer.from_phrase(n) for n in
            ("formosa-plumbing", "village-consumers", "supply-hub", "village-store", "common-node",
             "carlos", "valley-federation")}


def economy():
    """(keys, [Record...] in a valid order, named Records)."""
    k = keys()
    fp, vc, hub, store, fed = k["formosa-plumbing"], k["village-consumers"], k["supply-hub"], k["village-store"], \
        k["valley-federation"]
    n = {}
    n["council"] = B.council(fed, "Valley Federation", "federation")
    councils = [n["council"]] + [B.council(s, name, kind, fed) for s, name, kind in (
        (fp, "Formosa Plumbing Coop", "production"), (vc, "Village Consumers", "consumption"),
        (hub, "Supply Hub", "production"), (store, "Village Store", "production"))]
    n["genesis"] = B.genesis([fed, fp, vc, hub, store], "Valley economy", T0)
    n["member"] = B.member(fed, k["common-node"], "node")
    electorate = [fed, fp, vc, hub, store]
    n["proposal"] = B.proposal(fp, 1, 2026, [("40141600", 200, 30000), ("40171500", 500, 25000)])
    n["votation-open"] = B.votation_open(fp, 1, "approve", n["proposal"].fields[0], electorate, T0 + 86400)
    votes = [B.vote(s, n["votation-open"].fields[0], "yes") for s in (fed, fp, vc)]
    n["vote"] = votes[0]
    n["votation-close"] = B.votation_close(fp, n["votation-open"], votes, T0 + 3600)
    n["issue"] = B.issue(fp, 1, 30000, n["proposal"].fields[0])
    n["set-user"] = B.set_user(fp, n["issue"].fields[0], fp)
    n["use"] = B.use(fp, n["issue"].fields[0], "401416000012", "401416000099")
    n["accounted"] = B.accounted(k["common-node"], n["issue"].fields[0], n["use"].id, T0 + 7200)
    n["publication"] = B.publication(hub, 1, "price", b"\x40\x14\x16\x00", {1: 150, 2: "credits per valve"})
    second_use = B.use(fp, n["issue"].fields[0], "40171500", "40171500")
    n["conflict"] = R.conflict(n["use"], second_use)
    ordered = councils + [n["genesis"], n["member"], n["proposal"], n["votation-open"]] + votes + [
        n["votation-close"], n["issue"], n["set-user"], n["use"], n["accounted"], n["publication"], second_use]
    return k, ordered, n


def check_valid():
    """Applies the sample economy to an empty CTB: all must be accepted
    (the double spend as a conflict)."""
    _, ordered, _ = economy()
    st = ctb.MemoryState()
    led = ctb.Ledger(st)
    out = []
    for r in ordered:
        out.append(led.submit(r))
    return st, out


def accounted_batch(node_key, n, first=1, user=None, issuer_kid=b"\x01\x02\x03\x04"):
    """n ACCOUNTED receipts signed by node_key for n USEs of distinct tokens
    (serials first..): what a bridge PC holds after a busy hour, for receipt
    digests (pen.bridge.digests) in `pen bench sizes`, vectors and tests."""
    user = user or Signer.from_phrase("carlos")
    out = []
    for i in range(first, first + n):
        u = B.use(user, R.make_ref(issuer_kid, i), "501000000001", "501000000001")
        out.append(B.accounted(node_key, u.fields[0], u.id, T0 + i).raw)
    return out
