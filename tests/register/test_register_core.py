"""The register's rules without a browser: each refusal exact, and a refusal
changes nothing (no outbox row, no record in the copy)."""
import pytest

from pen import build as B
from pen.economy import qr
from pen.register.core import Refused, Register, read_scan
from pen_protocol import check, ctb, ids, records as R
from world import ANA, CARLOS, EXCHANGE, FOOD, PASSWORD, SHOP, build, sealed_book


@pytest.fixture
def reg(tmp_path):
    copy, toks = build(tmp_path / "copy.sqlite")
    r = Register(copy, tmp_path / "outbox.sqlite", FOOD, SHOP, EXCHANGE, clock=lambda: 1000.0)
    return r, toks


def _refused(key, fn, *a):
    with pytest.raises(Refused) as e:
        fn(*a)
    assert e.value.key == key
    return e.value


def test_a_device_payment_is_checked_kept_and_a_second_use_refused(reg):
    r, toks = reg
    u = B.use(ANA, toks["ana1"], FOOD, FOOD)
    a, p = r.pay_use(u.raw)
    assert a.verdict == check.INDETERMINABLE and a.reason == "copy-may-be-old" and p.state == "signed"
    again = B.use(ANA, toks["ana1"], "501000000002", FOOD)  # the same token, another use
    e = _refused("already-spent", r.pay_use, again.raw)
    assert e.detail == "a different use of this token exists"
    assert [q.id for q in r.outbox.all()] == [u.id]
    assert r.pay_use(u.raw)[1].id == u.id  # the same record again is the same payment, not a double spend


def test_a_use_to_another_account_or_by_another_key_is_refused(reg):
    r, toks = reg
    _refused("wrong-account", r.pay_use, B.use(ANA, toks["ana2"], FOOD, "501000000099").raw)
    _refused("bad-signature", r.pay_use, B.use(CARLOS, toks["ana2"], FOOD, FOOD).raw)  # not her key
    assert r.outbox.all() == [] and r.copy.get(b"T" + toks["ana2"])[5] == []


def test_book_wrong_then_right_password(reg):
    r, toks = reg
    book = sealed_book()
    _refused("wrong-password", r.pay_book, book, toks["book2"], "mango 7 rivers", FOOD)
    assert r.outbox.all() == []
    _refused("not-this-book", r.pay_book, book, toks["ana3"], PASSWORD, FOOD)
    _refused("bad-product", r.pay_book, book, toks["book2"], PASSWORD, "1")
    a, p = r.pay_book(book, toks["book2"], PASSWORD, FOOD)
    assert p.state == "signed" and ctb.token_state(r.copy.get(b"T" + toks["book2"])) == ctb.USED


def test_change_for_a_book_token_taken_into_exchange(reg):
    r, toks = reg
    _refused("bad-price", r.change_for, 10000, 12000)
    owe, picks = r.change_for(10000, 3000)
    assert owe == 7000 and [v for _, v in picks] == [5000, 2000]
    e = _refused("change-refused", r.give_change, CARLOS.public_key, picks)  # nothing taken in yet
    assert e.detail == "exchange-not-covered"
    _, p = r.pay_book(sealed_book(), toks["book1"], PASSWORD, FOOD, exchange=True)
    assert R.parse(p.record).fields[1:] == [ids.pack(EXCHANGE)] * 2  # product and account: the exchange
    r.give_change(CARLOS.public_key, picks)
    assert [ctb.token_state(r.copy.get(b"T" + ref)) for ref, _ in picks] == [ctb.USABLE] * 2
    assert ctb.user(r.copy.get(b"T" + picks[0][0])) == CARLOS.public_key
    owe, rest = r.change_for(3000, 0)
    assert [v for _, v in rest] == [2000, 1000]
    _refused("no-change", r.change_for, 10000, 0)


def test_scans_that_are_not_payments(reg):
    _refused("unknown-qr", read_scan, "hello")
    _refused("damaged-qr", read_scan, "pen:token:zz:5")
    _refused("damaged-qr", read_scan, "pen:rec:AAAA")
    _refused("not-a-payment", read_scan, qr.record_payload(B.member(SHOP, ANA, "member").raw))
    _refused("damaged-qr", read_scan, "pen:sealed:AAAA")


def test_the_day_totals_and_conflict(reg):
    r, toks = reg
    u = B.use(ANA, toks["ana1"], FOOD, FOOD)
    r.pay_use(u.raw)
    r.pay_use(B.use(ANA, toks["ana2"], FOOD, FOOD).raw)
    other = B.use(ANA, toks["ana1"], "501000000002", FOOD)  # spent elsewhere too: the copy learns it at sync
    r.copy.submit([other.raw])
    d = r.day(0)
    ref = lambda t: "%s:%d" % (t[:4].hex(), R.ref_serial(t))  # noqa: E731
    assert {p["token"]: p["state"] for p in d["payments"]} == {ref(toks["ana1"]): "conflict",
                                                                  ref(toks["ana2"]): "pending"}
    assert d["totals"] == {FOOD: 3000} and d["outstanding"] == 1 and d["queue"] == 2
