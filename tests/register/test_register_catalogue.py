"""The register takes a USE only for a product of the economy's catalogue
(issue 12): a scanned USE and a credit-book payment naming anything else
are refused with "unknown-product" before anything is signed, kept or
stored. With no catalogue in the copy yet, every well-formed id is taken
(the economy has not published one)."""
import pytest

from pen import build as B
from pen.register.core import Refused, Register
from pen_protocol import ctb, ids
from world import ANA, EXCHANGE, FED, FOOD, PASSWORD, SHOP, build, sealed_book

TOYS = "601000000001"  # no catalogue entry above it


def _catalogue(copy):
    copy.submit([B.publication(FED, 1, "product", ids.pack("50100000"), {1: "Fresh fruit", 2: 1, 3: "kg"}).raw,
                  B.publication(FED, 2, "product", ids.pack("84121500"), {1: "Banking and exchange"}).raw])


@pytest.fixture
def reg(tmp_path):
    copy, toks = build(tmp_path / "copy.sqlite")
    return Register(copy, tmp_path / "outbox.sqlite", FOOD, SHOP, EXCHANGE, clock=lambda: 1000.0), toks


def _refused(fn, *a):
    with pytest.raises(Refused) as e:
        fn(*a)
    return e.value


def test_a_scanned_use_of_an_unknown_product_is_refused_and_nothing_kept(reg):
    r, toks = reg
    _catalogue(r.copy)
    before = r.copy.state_digest()
    e = _refused(r.pay_use, B.use(ANA, toks["ana1"], TOYS, FOOD).raw)
    assert (e.key, e.detail) == ("unknown-product", TOYS)
    assert r.outbox.all() == [] and r.copy.state_digest() == before
    a, p = r.pay_use(B.use(ANA, toks["ana1"], FOOD, FOOD).raw)  # under 50100000: known
    assert p.state == "signed"


def test_a_book_payment_for_an_unknown_product_is_refused_before_the_password(reg):
    r, toks = reg
    _catalogue(r.copy)
    before = r.copy.state_digest()
    # a wrong password too: the product is refused first, so the book is never unsealed for it
    e = _refused(r.pay_book, sealed_book(), toks["book2"], "not the password", TOYS)
    assert (e.key, e.detail) == ("unknown-product", TOYS)
    assert r.outbox.all() == [] and r.copy.state_digest() == before
    _, p = r.pay_book(sealed_book(), toks["book1"], PASSWORD, FOOD, exchange=True)  # the exchange is catalogued
    assert ctb.token_state(r.copy.get(b"T" + toks["book1"])) == ctb.USED


def test_without_a_catalogue_the_register_takes_any_product(reg):
    r, toks = reg
    _, p = r.pay_use(B.use(ANA, toks["ana1"], TOYS, FOOD).raw)
    assert p.state == "signed"


def test_the_refusal_has_a_sentence():
    import json
    from pathlib import Path
    import pen.register
    lang = json.loads((Path(pen.register.__file__).parent / "lang" / "en.json").read_text())
    assert lang["reason"]["unknown-product"] == "this product is not in the economy's catalogue. Nothing was taken."
