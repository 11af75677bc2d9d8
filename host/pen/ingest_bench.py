"""`pen bench ingest`: validated+stored records per second into the SQLite
CTB, against a bare libsodium verify loop measured in the same run.

The workload is what a CTB node ingests most: payments. Tokens are issued
(ISSUE, by the producing council under its approved proposal), handed to
users (SET_USER) and spent (USE, signed by one of many users), uploaded in
batches of BATCH records in arrival order. Every record is parsed, checked
by the one validator (pen_protocol.ctb, signature included) and stored in
one transaction per batch in a fresh SQLite file (WAL, synchronous=FULL).

The verify bound is the same records' signatures checked one after the
other with PyNaCl's lowest-level call (nacl.bindings.crypto_sign_open, one
libsodium crypto_sign_open each), on one thread: what validation would
cost if nothing but the signature had to be checked.
"""
import json
import os
import tempfile
import time

from pen import build as B
from pen.keys import Signer
from pen.samples import economy
from pen.store import SQLiteCTB
from pen_protocol import records as R, sign

BATCH = 500
TOKENS = 3000  # x 3 records = 9000 records; the sample proposal approves 25000 more credits
USERS = 200
# signature worker processes beside this one (pen.verifypool), as `pen node serve` runs
VERIFY_WORKERS = 1 if (os.cpu_count() or 1) > 1 else 0


def workload(tokens=TOKENS, users=USERS):
    """(base records, payment records in arrival order)."""
    k, ordered, n = economy()
    base = [r for r in ordered if r.type not in (R.USE, R.ACCOUNTED, R.CONFLICT)]
    fp = k["formosa-plumbing"]
    prop = n["proposal"].fields[0]
    people = [Signer.from_phrase("bench-user-%d" % i) for i in range(users)]
    recs = []
    for i in range(tokens):
        user = people[i % users]
        t = B.issue(fp, 1000 + i, 1, prop)
        recs += [t, B.set_user(fp, t.fields[0], user),
                 B.use(user, t.fields[0], "5010%04d" % (i % 97), "4014%04d" % (i % 89))]
    return base, recs


def _signers(base, recs):
    """(public key, signed message, signature) of every payment record."""
    keys = {}
    for r in base:
        if r.type == R.COUNCIL:
            keys[sign.kid(r.fields[0])] = r.fields[0]
    users = {}
    out = []
    for r in recs:
        if r.type == R.ISSUE:
            pk = keys[R.ref_kid(r.fields[0])]
        elif r.type == R.SET_USER:
            pk = keys[R.ref_kid(r.fields[0])]
            users[r.fields[0]] = r.fields[1]
        else:
            pk = users[r.fields[0]]
        out.append((pk, r.signed_message(), r.sig))
    return out


def verify_rate(triples, rounds=3):
    """Bare libsodium verifications per second (best of rounds)."""
    from nacl.bindings import crypto_sign_open
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for pk, msg, sig in triples:
            crypto_sign_open(sig + msg, pk)
        best = max(best, len(triples) / (time.perf_counter() - t))
    return best


def ingest_rate(base, recs, batch=BATCH, rounds=3, verifier=None):
    """Validated+stored records per second (best of rounds, each into a fresh file)."""
    raws = [r.raw for r in recs]
    best = 0.0
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="pen-ingest-") as d:
            store = SQLiteCTB(os.path.join(d, "ctb.sqlite"))
            store.verifier = verifier
            store.submit([r.raw for r in base])
            t = time.perf_counter()
            for i in range(0, len(raws), batch):
                store.submit(raws[i:i + batch])
            dt = time.perf_counter() - t
            if store.count() != len(base) + len(raws):
                raise RuntimeError("ingest lost records")
            store.close()
        best = max(best, len(raws) / dt)
    return best


def run_ingest_bench(tokens=TOKENS, batch=BATCH, rounds=3, workers=VERIFY_WORKERS):
    """records_per_s is the node's configuration: signatures of each batch
    checked by this process and `workers` worker processes
    (pen.verifypool); records_per_s_one_core checks them all here. The
    bound is one core's bare verify loop either way."""
    from pen.verifypool import ParallelVerifier
    base, recs = workload(tokens)
    triples = _signers(base, recs)
    pool = ParallelVerifier(workers) if workers else None
    try:
        # interleaved, so all see the same machine load
        v1 = verify_rate(triples, rounds)
        one = ingest_rate(base, recs, batch, rounds)
        r = ingest_rate(base, recs, batch, rounds, pool) if pool else one
        v2 = verify_rate(triples, rounds)
    finally:
        if pool:
            pool.close()
    v = max(v1, v2)
    return {"records": len(recs), "batch": batch, "records_per_s": round(r),
            "verify_per_s": round(v), "ratio_to_verify_bound": round(r / v, 3),
            "verify_workers": workers, "records_per_s_one_core": round(one),
            "ratio_one_core": round(one / v, 3)}


def cmd(args):
    res = run_ingest_bench()
    if getattr(args, "json", False):
        print(json.dumps(res))
    else:
        print("ingest: %(records_per_s)d records/s validated and stored (%(records)d records, batches of "
              "%(batch)d, %(verify_workers)d signature workers); bare libsodium verify: %(verify_per_s)d/s; "
              "ratio %(ratio_to_verify_bound).3f (one core: %(records_per_s_one_core)d/s, "
              "ratio %(ratio_one_core).3f)" % res)
    return 0
