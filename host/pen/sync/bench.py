"""`pen bench sync`: two replicas, k scattered differences, one in-memory sync.

Ids are what a CTB holds: the first 16 bytes of SHA-256 of a record; here of a
counter under a seed, which is as uniform as real record ids. Half the
differences are only on the initiator's side, half only on the responder's,
so both replicas hold `records` ids. Every byte of every message both ways is
counted, the recovered differences are checked exactly on both sides, and a
mismatch raises instead of printing a figure.
"""
import hashlib
import json
import math
import time

import numpy as np

from .index import SetIndex, ids_to_arrays
from .reconciler import reconcile

ID_BYTES = 16
# ids added one at a time to time the incremental path
_INCREMENTAL_SAMPLE = 1000


def _ids(seed, start, count):
    """count ids: SHA-256(seed:i)[:16] for i in start..start+count-1, as arrays."""
    pre = b"pen-bench-sync:%d:" % seed
    raw = b"".join(hashlib.sha256(pre + b"%d" % i).digest()[:ID_BYTES] for i in range(start, start + count))
    return ids_to_arrays([raw])


def run_sync_bench(records=1_000_000, differences=1000, seed=0):
    """Build two `records`-id replicas differing in `differences` ids, sync
    them, verify, and return the figures (see docs/sync.md)."""
    if records < 0 or differences < 0 or differences // 2 > records:
        raise ValueError("need 0 <= differences/2 <= records")
    a_only, b_only = differences // 2, differences - differences // 2
    common = records - a_only
    hi, lo = _ids(seed, 0, common + a_only + b_only)
    a_sel = np.r_[0:common, common:common + a_only]
    b_sel = np.r_[0:common, common + a_only:common + a_only + b_only]

    t0 = time.perf_counter()
    index_a = SetIndex.from_arrays(hi[a_sel], lo[a_sel])
    index_b = SetIndex.from_arrays(hi[b_sel], lo[b_sel])
    index_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    a, b = reconcile(index_a, index_b)
    seconds = time.perf_counter() - t0

    expect_a_only = _as_bytes(hi[common:common + a_only], lo[common:common + a_only])
    expect_b_only = _as_bytes(hi[common + a_only:], lo[common + a_only:])
    a_we_lack, a_they_lack = a.result()
    b_we_lack, b_they_lack = b.result()
    if not (a_we_lack == b_they_lack == expect_b_only and a_they_lack == b_we_lack == expect_a_only):
        raise AssertionError("sync recovered the wrong differences")

    total = a.sent_bytes + b.sent_bytes
    floor = ID_BYTES * differences
    return {
        "records": records,
        "differences": differences,
        "bytes": total,
        "round_trips": max(a.sent_messages, b.sent_messages),
        "ratio_to_floor": round(total / floor, 3) if floor else None,
        "seconds": round(seconds, 3),
        "index_seconds": round(index_seconds, 3),
        "add_us_per_id": _time_incremental(index_a, seed),
        "floor_bytes": floor,
        "initiator_bytes": a.sent_bytes,
        "responder_bytes": b.sent_bytes,
        "messages": a.sent_messages + b.sent_messages,
        "mode": a.mode,
        "symbols": a.symbols,
        "estimate": round(a.estimate, 1) if a.estimate is not None else None,
        "seed": seed,
    }


def _as_bytes(hi, lo):
    order = np.lexsort((lo, hi))
    return [int(h).to_bytes(8, "big") + int(x).to_bytes(8, "big") for h, x in zip(hi[order], lo[order])]


def _time_incremental(index, seed):
    """Microseconds per id for add() on the built index (symbols + sketch)."""
    hi, lo = _ids(seed + 1, 0, _INCREMENTAL_SAMPLE)
    ids = _as_bytes(hi, lo)
    t0 = time.perf_counter()
    for x in ids:
        index.add(x)
    return round((time.perf_counter() - t0) * 1e6 / len(ids), 1)


def cmd(args):
    """Handler for `pen bench sync [--json]` (wired by pen.commands.bench)."""
    out = run_sync_bench(records=getattr(args, "records", None) or 1_000_000,
                         differences=getattr(args, "differences", None) or 1000,
                         seed=getattr(args, "seed", None) or 0)
    if getattr(args, "json", False):
        print(json.dumps(out))
        return 0
    print("sync of two %d-id replicas differing in %d ids: %d bytes (%.2fx the %d-byte floor), "
          "%d round trips, %.2f s (index build %.2f s for both, add %.0f us/id)"
          % (out["records"], out["differences"], out["bytes"], out["ratio_to_floor"] or math.nan,
             out["floor_bytes"], out["round_trips"], out["seconds"], out["index_seconds"],
             out["add_us_per_id"]))
    return 0
