"""Shared fixtures and helpers of the CTB tests (test modules import the
helpers: `from .conftest import rejected`)."""
import pytest

from pen.samples import economy
from pen_protocol import ctb

from ledgerkit import accept as ok, rejected, snapshot  # noqa: F401  (the tests import them from here)


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


