"""Golden-vector cases for the economy's validator rules (publication
schemas, year end, individual proposals, several memberships), applied over
the sample economy like the other ctb.json cases, so both runtimes replay
them (host/pen/vectors.py appends these)."""
from pen import build as B
from pen.keys import Signer
from pen_protocol import ids


def cases(k, n):
    fp, hub, vc, fed = k["formosa-plumbing"], k["supply-hub"], k["village-consumers"], k["valley-federation"]
    prop = n["proposal"].fields[0]
    ana = Signer.from_phrase("vector/ana")
    ye = B.publication(fp, 60, "year-end", 2026, {1: [], 2: 25000})
    late = B.issue(fp, 61, 10, prop)  # ISSUED and never given out: excess
    return _big_sums(k) + [
        ("price stated as text", [B.publication(hub, 60, "price", ids.pack("40141600"), {1: "cheap"}).raw],
         "rejected", "bad-publication"),
        ("limit set by a production council", [B.publication(hub, 61, "limit", ids.pack("50"), {1: 3}).raw],
         "rejected", "bad-publication"),
        ("accounts whose total is not their sum",
         [B.publication(fed, 60, "accounts", 2026, {1: [[ids.pack("40"), 5]], 2: 6}).raw], "rejected",
         "bad-publication"),
        ("year end misstating the unissued credits",
         [B.publication(fp, 61, "year-end", 2026, {1: [], 2: 0}).raw], "rejected", "bad-publication"),
        ("year end", [ye.raw], "accepted", ""),
        ("issue under a closed year", [ye.raw, B.issue(fp, 60, 10, prop).raw], "rejected", "year-closed"),
        ("year end leaving out an excess token", [late.raw, B.publication(fp, 62, "year-end", 2026,
                                                                           {1: [], 2: 24990}).raw],
         "rejected", "excess-unlisted"),
        ("year end in two parts", [late.raw, B.publication(fp, 62, "year-end", 2026,
                                                           {1: [late.fields[0]], 2: 24990, 3: 1}).raw,
                                   B.publication(fp, 63, "year-end", 2026, {1: [], 2: 24990}).raw], "accepted", ""),
        ("year end whose part marker is not 1", [B.publication(fp, 62, "year-end", 2026, {1: [], 2: 25000, 3: 0}).raw],
         "rejected", "bad-publication"),
        ("proposal of an individual proposer", [B.member(vc, ana, "proposer").raw,
                                                B.proposal(ana, 1, 2026, [("50", 10, 200)]).raw], "accepted", ""),
        ("proposal of a plain member", [B.member(vc, ana, "member").raw,
                                        B.proposal(ana, 1, 2026, [("50", 10, 200)]).raw], "rejected",
         "not-a-proposer"),
        ("a second membership of one key", [B.member(fp, k["common-node"], "member").raw], "accepted", ""),
        # only the federation certifies node keys (ctb.Ledger._member, issue 10 item 4): the node key's further
        # memberships are plain ones
        ("the node key a member of the federation and of Formosa too: three memberships",
         [B.member(fed, k["common-node"], "member").raw, B.member(fp, k["common-node"], "member").raw], "accepted",
         ""),
        ("the node key certified by Formosa as node too", [B.member(fp, k["common-node"], "node").raw], "rejected",
         "not-the-federation"),
    ]


def _big_sums(k):
    """A second proposal that would take a council's year past 2^64-1
    credits is refused (the limbs of an account's sum past 2^64-1 are
    replayed under MicroPython by tests/economy/test_yearend_order.py: a
    case with a whole approved plan would not fit the replay's heap)."""
    hub = k["supply-hub"]
    prop = B.proposal(hub, 70, 2026, [("40", 1, 2 ** 64 - 1)])
    over = B.proposal(hub, 71, 2026, [("40", 1, 1)])
    return [("a council's proposals of a year past 2^64-1 credits", [prop.raw, over.raw], "rejected", "bad-field")]
