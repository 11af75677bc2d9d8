"""A leaf says it is there and learns who hears it (routing._LEAF), tried as
an attacker would, on both runtimes (tests/power/leaf_advert_check.py)."""
import powerpath  # noqa: F401

from powerpath import HERE, run_on_cpython


def test_leaf_adverts_on_cpython():
    assert run_on_cpython("leaf_advert_check.py") == "leaf advert ok"


def test_leaf_adverts_under_micropython(mpy):
    # from source, several MeshNodes at once: the heap of routing_check (a board's one node in 64 KB is
    # tests/firmware/test_heap.py's)
    assert mpy(str(HERE / "leaf_advert_check.py"), heap="256k").strip() == "leaf advert ok"
