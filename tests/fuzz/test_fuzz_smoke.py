"""The fuzz harness in the suite: every corpus input, then seeded random
mutations of them, through fuzz_node.one_input (its invariants raise). The
long coverage-guided run is run_atheris.py."""
import os
import random
import sys

import pytest

from conftest import NODE_HEAP

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fuzz_node as Z  # noqa: E402

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def corpus():
    return [open(os.path.join(CORPUS, f), "rb").read() for f in sorted(os.listdir(CORPUS))]


def test_the_corpus_is_kept_and_every_input_passes_the_invariants():
    inputs = corpus()
    assert len(inputs) >= 13  # the seeds at least (make_seeds.py)
    for data in inputs:
        Z.one_input(data)


def test_random_mutations_of_the_corpus_pass_the_invariants():
    r = random.Random(20261203)
    inputs = corpus()
    for _ in range(2000):
        d = bytearray(r.choice(inputs))
        for _ in range(r.randrange(1, 8)):
            k = r.randrange(3)
            if k == 0 and d:
                d[r.randrange(len(d))] = r.randrange(256)
            elif k == 1:
                d.insert(r.randrange(len(d) + 1), r.randrange(256))
            elif d:
                del d[r.randrange(len(d))]
        Z.one_input(bytes(d))


def test_the_invariant_catches_an_unauthentic_frame_that_changes_state(monkeypatch):
    # the harness must be able to fail: a node that skips the tag check is caught
    real = Z.fresh

    def keyless(bridge=False):
        n = real(bridge)
        n.key = None  # reads every frame, as the node did at a151bf1
        return n
    monkeypatch.setattr(Z, "fresh", keyless)
    data = open(os.path.join(CORPUS, "seed-use-forged"), "rb").read()
    try:
        Z.one_input(data)
    except AssertionError as e:
        assert "unauthentic frame changed the node" in str(e)
    else:
        raise AssertionError("the invariant did not fire")


@pytest.mark.micropython
@pytest.mark.parametrize("count, seed", [(3000, 7), (100000, 11)])
def test_random_frames_under_micropython_in_the_node_heap(mpy, tmp_path, count, seed):
    # issue 10: >= 100k random frames under MicroPython at 64 KB, the node's bytecode in ROM as on a board
    # (conftest.NODE_HEAP; ~9 s for 100k here): no exception escapes, no unauthentic frame changes the node
    out = mpy("", heap=NODE_HEAP, rom=True, module="fuzz_frames_mpy",
              args=[str(count), str(seed), str(tmp_path / "j.bin")], timeout=600).split()
    got, authentic, refused, changed, errors = [int(x) for x in out[:5]]
    assert got == count and authentic > count // 3 and refused > count // 3 and changed == 0 and errors == 0
