"""Assertions on a Ledger over an in-memory CTB, shared by the ledger's and
the economy's rule tests: a refusal names its exact reason and changes
nothing; an acceptance is checked record by record."""
from pen_protocol import ctb


def snapshot(st):
    return repr(sorted(st.kv.items())), sorted(st.recs)


def rejected(led, st, rec, reason):
    """Submit rec; it must be refused with exactly reason and change nothing."""
    before = snapshot(st)
    v = led.submit(rec)
    assert (v.code, v.reason) == (ctb.REJECTED, reason), v
    assert snapshot(st) == before
    return v


def accept(led, *recs):
    for r in recs:
        v = led.submit(r)
        assert v.code == ctb.ACCEPTED, (r, v)
