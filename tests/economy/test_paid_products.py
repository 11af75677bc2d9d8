"""Where product ids and limits are enforced (issue 12, item 3). The
validator cannot refuse a USE for an unknown product, or a proposal over a
limit: publications only accumulate, so such a rule would take a record
at a node that saw it before the publication and refuse it, for good, at
one that saw the publication first. The tests below show that with the
same records in two orders, then check each of Pen's own paying front ends
refuses an unknown product before anything is signed, kept or sent (the
register's own tests are in tests/register/test_register_catalogue.py)."""
import pytest

from pen import build as B
from pen.economy.catalogue import Catalogue, CatalogueError, check_paid_product
from pen.economy.plan import limits_for, Plan
from pen_protocol import cbor, ctb, ids, records as R

from .conftest import approve, ref_in
from .kit import Fed, accept

TOYS = "601000000001"


def _strict(led, rec):
    """The rule the validator does NOT have: refuse a USE naming a product
    outside the catalogue, once there is one. Returns the verdict code."""
    if rec.type == R.USE:
        cat = Catalogue.from_ctb(led.state)
        if len(cat) and not cat.known(ids.unpack(rec.fields[1])):
            return ctb.REJECTED
    return led.submit(rec).code


def _use_and_catalogue():
    f = Fed()
    prop = f.plan(f.k["prod"], 2026, [("40", 1, 100)])
    t = f.token(f.k["prod"], prop, 100, f.k["prod"])
    use = B.use(f.k["prod"], t.fields[0], TOYS, TOYS)
    entry = B.publication(f.k["fed"], 90, "product", ids.pack("50100000"), {1: "Fresh fruit", 2: 1})
    return f, use, entry


def _state(f):
    return [(k, cbor.dumps(v)) for k, v in sorted(f.st.kv.items())], sorted(f.st.recs)


def test_a_catalogue_rule_in_the_validator_would_depend_on_arrival_order():
    (a, use, entry), (b, _, _) = _use_and_catalogue(), _use_and_catalogue()
    # the validator as it is: both orders take both records and end in one state
    accept(a.led, use, entry)
    accept(b.led, entry, use)
    assert _state(a) == _state(b)
    # the rule it does not have: the use-first node takes the USE, the catalogue-first node never will
    (a, use, entry), (b, _, _) = _use_and_catalogue(), _use_and_catalogue()
    assert [_strict(a.led, use), _strict(a.led, entry)] == [ctb.ACCEPTED, ctb.ACCEPTED]
    assert [_strict(b.led, entry), _strict(b.led, use), _strict(b.led, use)] == [ctb.ACCEPTED, ctb.REJECTED,
                                                                                  ctb.REJECTED]
    assert _state(a) != _state(b)


def _over_limit_and_limit():
    f = Fed()
    accept(f.led, B.member(f.k["cons"], f.k["ana"], "proposer"))
    prop = B.proposal(f.k["ana"], 1, 2026, [("50100000", 30, 300)])
    limit = B.publication(f.k["cons"], 91, "limit", ids.pack("5010"), {1: 20, 2: "kg", 3: 2026})
    return f, prop, limit


def test_a_limit_rule_in_the_validator_would_depend_on_arrival_order():
    """A limit published after a proposal over it: the validator takes both
    in both orders; a validator enforcing the limit would keep the
    proposal at one node and refuse it at the other."""
    (a, prop, limit), (b, _, _) = _over_limit_and_limit(), _over_limit_and_limit()
    accept(a.led, prop, limit)
    accept(b.led, limit, prop)
    assert _state(a) == _state(b)

    def over(f):
        plan = Plan(f.st, 2026)
        lim = limits_for(f.st, plan, f.k["cons"].kid, 2026)
        return {c: q for c, (q, _) in lim.items()}, sum(ln.quantity for ln in plan.lines if ln.proposer == f.k["ana"].kid)
    # what a strict validator would see when the proposal arrives: nothing to enforce at a, a limit of 20 at b
    fresh_a, fresh_b = _over_limit_and_limit()[0], _over_limit_and_limit()[0]
    accept(fresh_b.led, limit)
    assert over(fresh_a)[0] == {} and over(fresh_b)[0] == {"5010": 20}
    assert over(a) == ({"5010": 20}, 30)  # both nodes end holding a proposal over the limit; pen plan propose refuses it


def test_check_paid_product_is_what_every_front_end_calls():
    f, use, entry = _use_and_catalogue()
    check_paid_product(f.st, TOYS)  # no catalogue yet: any well-formed id
    accept(f.led, entry)
    check_paid_product(f.st, "501000000001")
    with pytest.raises(CatalogueError) as e:
        check_paid_product(f.st, TOYS)
    assert str(e.value) == "product 601000000001 is not in the catalogue (see: pen products list); nothing signed"


def test_store_client_refuses_an_unknown_product_before_the_outbox_or_the_link(tmp_path):
    from pen.storeclient import Outbox, StoreClient

    class NoLink:
        def __getattr__(self, name):
            raise AssertionError("the link was used")
    f, use, entry = _use_and_catalogue()
    accept(f.led, entry)
    sc = StoreClient(NoLink(), Outbox(tmp_path / "o.sqlite"), [], client=NoLink(),
                     products=lambda pid: check_paid_product(f.st, pid))
    with pytest.raises(CatalogueError):
        sc.pay(use.raw)
    assert sc.receipts() == []


def test_pen_store_pay_refuses_an_unknown_product_in_one_line(fed):
    """With the store's CTB copy holding the catalogue, `pen store pay`
    refuses before opening the link (port 9 has no node): nothing goes
    into the outbox, nothing into the CTB."""
    import os
    from pen.storeclient import Outbox
    fed("store", "trust", "11" * 32)
    prop = fed.out("plan", "propose", "--key", "prod", "--year", "2027", "--line", "40:1:100")
    approve(fed, "prod", ref_in(prop))
    tok = ref_in(fed.out("token", "issue", "--key", "prod", "--value", "100", "--proposal", ref_in(prop)))
    fed("token", "assign", "--key", "prod", "--token", tok, "--user", "prod")
    line = fed.fails("store", "pay", "--link", "tcp:127.0.0.1:9", "--key", "prod", "--token", tok,
                     "--product", TOYS, "--account", "40")
    assert line == "pen: error: product %s is not in the catalogue (see: pen products list); nothing signed" % TOYS
    outbox = os.path.join(fed.home, "store", "outbox.sqlite")
    assert not os.path.exists(outbox) or Outbox(outbox).all() == []
