"""Shared fixtures of the CTB tests."""
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
