"""Shared fixtures and helpers of the CTB tests (test modules import the
helpers: `from .conftest import rejected`)."""
import pytest

from pen.samples import economy
from pen_protocol import ctb


@pytest.fixture
def eco():
    """The sample economy accepted into a fresh in-memory ledger, without
    the sample's double spend: (keys, named records, state, ledger)."""
    k, ordered, n = economy()
    st = ctb.MemoryState()
    led = ctb.Ledger(st)
    for r in ordered[:-1]:
        assert led.submit(r).code == ctb.ACCEPTED, r
    return k, n, st, led


def everyone(k):
    """The councils of epoch 0: the sample's five founders."""
    return [k[x] for x in ("valley-federation", "formosa-plumbing", "village-consumers", "supply-hub",
                           "village-store")]


def snapshot(st):
    return repr(sorted(st.kv.items())), sorted(st.recs)


def rejected(led, st, rec, reason):
    """Submit rec; it must be refused with exactly reason and change nothing."""
    before = snapshot(st)
    v = led.submit(rec)
    assert (v.code, v.reason) == (ctb.REJECTED, reason), v
    assert snapshot(st) == before
    return v


def ok(led, *recs):
    for r in recs:
        v = led.submit(r)
        assert v.code == ctb.ACCEPTED, (r, v)
