"""A small economy with conflicting records for node and sync tests: tokens
spent two or three times by their user, councils voting twice, spread over
peers so that each peer sees a different, individually valid, part."""
import random

from pen import build as B
from pen.keys import Signer
from pen.samples import economy, T0
from pen_protocol import records as R

LETTERS = b"GMESCKVPXOTANQU"  # every state key prefix (pen_protocol.ctb)


def base_and_spends(tokens=12, seed=1):
    """(base records, {peer: [records]}) for peers 0, 1, 2."""
    k, ordered, n = economy()
    base = [r for r in ordered if r.type not in (R.USE, R.ACCOUNTED, R.CONFLICT)]
    fp = k["formosa-plumbing"]
    carlos = Signer.from_phrase("carlos")
    prop = n["proposal"].fields[0]
    rnd = random.Random(seed)
    parts = {0: [], 1: [], 2: []}
    for i in range(tokens):
        t = B.issue(fp, 200 + i, 10, prop)
        u = B.set_user(fp, t.fields[0], carlos)
        base += [t, u]
        spends = [B.use(carlos, t.fields[0], "5010%04d" % j, "5010%04d" % j) for j in range(1 + i % 3)]
        # each peer gets one of the spends (the same one, or different ones)
        for p in parts:
            parts[p].append(rnd.choice(spends))
    # a votation on a text, where two councils vote twice (different choices)
    fed, vc, hub, store = k["valley-federation"], k["village-consumers"], k["supply-hub"], k["village-store"]
    electorate = [fed, fp, vc, hub, store]
    op = B.votation_open(fp, 7, "other", "a new bakery", electorate, T0 + 86400)
    base.append(op)
    ref = op.fields[0]
    for p, votes in ((0, [(fed, "yes"), (vc, "yes"), (hub, "no")]),
                     (1, [(fed, "no"), (vc, "yes"), (store, "yes")]),
                     (2, [(fed, "abstain"), (hub, "yes"), (fp, "yes")])):
        parts[p] += [B.vote(s, ref, c) for s, c in votes]
    return base, parts


def state_of(store):
    return {bytes([c]): list(store.state_prefix(bytes([c]))) for c in LETTERS}


def conflicts(store):
    return [R.parse(raw) for _, raw in store.records(types=[R.CONFLICT])]


# -- authenticated access (pen.node.auth) --------------------------------------

PEER = Signer.from_phrase("test-peer-node")  # a peer node's key, allowed on the test nodes
BRIDGE_KEY = Signer.from_phrase("test-bridge")


def allow(node, signer=PEER, role="node", rate=1e6, burst=1e6):
    """Put signer's key on node's allow-list (tests: an unlimited rate
    unless a test is about the limit)."""
    from pen.node.auth import allow_peer
    allow_peer(node.store, signer.public_key, signer.name or "peer", role, rate, burst)


def raw_request(url, body=None, method="POST", signer=None, ctype="application/cbor", headers=None, when=None):
    """(status, reply) of one request, signed by signer if given; the
    reply decoded from JSON, raw bytes when it is not JSON (CBOR)."""
    import json
    import time
    import urllib.error
    import urllib.parse
    import urllib.request
    from pen.peering import sign_request
    h = {"Content-Type": ctype}
    if signer is not None:
        u = urllib.parse.urlsplit(url)
        path = u.path + ("?" + u.query if u.query else "")
        h.update(sign_request(signer, method, u.netloc, path, body, time.time() if when is None else when))
    h.update(headers or {})
    req = urllib.request.Request(url, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            data = r.read()
            return r.status, (json.loads(data) if r.headers.get_content_type() == "application/json" else data)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
