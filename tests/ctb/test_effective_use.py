"""ctb.effective_use answers without building the accounted list when the
token has no receipt (a shortcut on every USE): the same answer as the
definition — the accounted use with the lowest id, else the lowest-id use —
for every shape of token value, receipts or not."""
import itertools
import random

from pen_protocol import ctb


def by_definition(t):
    if not t[5]:
        return None
    done = [a[1] for a in t[6]]
    for u in t[5]:
        if u[0] in done:
            return u
    return t[5][0]


def token(uses, receipts):
    return [b"k" * 8, 5, 0, b"a" * 8, b"u" * 32, uses, receipts]


def test_every_small_token_shape_answers_as_the_definition():
    ids = [bytes([i]) * 16 for i in range(4)]
    for n in range(0, 4):
        for chosen in itertools.combinations(ids, n):
            uses = sorted([[i, b"\x01", b"\x77"] for i in chosen])
            for k in range(0, n + 1):
                for acc in itertools.combinations(chosen, k):
                    receipts = sorted([[b"r" * 16, a] for a in acc])
                    t = token(uses, receipts)
                    assert ctb.effective_use(t) is by_definition(t)


def test_a_receipt_naming_an_unknown_use_still_gives_the_lowest_id_use():
    uses = [[b"\x02" * 16, b"\x01", b"\x77"], [b"\x05" * 16, b"\x01", b"\x78"]]
    t = token(uses, [[b"r" * 16, b"\x09" * 16]])
    assert ctb.effective_use(t) is uses[0]


def test_random_tokens_answer_as_the_definition():
    rnd = random.Random(7)
    for _ in range(2000):
        ids = sorted({bytes([rnd.randrange(8)]) * 16 for _ in range(rnd.randrange(0, 5))})
        uses = [[i, b"\x01", b"\x77"] for i in ids]
        receipts = sorted([[b"r" * 16, rnd.choice(ids + [b"\x0f" * 16])] for _ in range(rnd.randrange(0, 3))]) if ids else []
        t = token(uses, receipts)
        assert ctb.effective_use(t) is by_definition(t)
