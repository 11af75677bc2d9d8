"""Sums of token values past 2^64-1 through the SQLite store and the
commands (issue 12, item 1): stored, balanced and shown whole; refused, in
one line, where a record would have to carry them."""
import json

from pen.commands.ctb import balances
from pen_protocol import ids

from .conftest import approve, ref_in

U64 = 2 ** 64 - 1


def test_commands_past_2_64_show_the_sum_and_refuse_to_publish_it(fed):
    """Through the store and the commands: two tokens of 2^64-1 credits
    into one account. The SQLite CTB stores it, `pen ctb status` balances,
    `pen accounts` shows the whole sum, `pen publish accounts` refuses with
    one line and stores nothing."""
    for name in ("prod", "mill"):
        prop = ref_in(fed.out("plan", "propose", "--key", name, "--year", 2027, "--line", "40:1:%d" % U64))
        approve(fed, name, prop)
        tok = ref_in(fed.out("token", "issue", "--key", name, "--value", U64, "--proposal", prop))
        fed("token", "assign", "--key", name, "--token", tok, "--user", "cons")
        fed("token", "use", "--key", "cons", "--token", tok, "--product", "50", "--account", "50")
    store = fed.store()
    assert store.get(b"A" + ids.pack("50")) == [1, U64 - 1]
    digest = store.state_digest()
    store.close()
    store = fed.store()
    b = balances(store)
    from pen.node.core import Node  # GET /v1/accounts and /v1/accounts/ACCOUNT
    node = Node(store)
    assert node.accounts("5")["total"] == 2 * U64 == node.account("50")["credits"]
    store.close()
    assert b["balanced"] and b["credited_to_accounts"] == 2 * U64
    out = fed.out("accounts", "--json")
    assert json.loads(out)["total"] == 2 * U64
    assert "%d" % (2 * U64) in fed.out("accounts")
    line = fed.fails("publish", "accounts", "--key", "cons", "--year", 2027)
    assert line == ("pen: error: account 50 holds %d credits, more than a publication carries (2^64-1) for 2027"
                    % (2 * U64))
    store = fed.store()
    assert store.state_digest() == digest
    store.close()


def test_plan_close_with_more_excess_than_one_publication_lists(fed):
    """130 excess tokens: `pen plan close` publishes a part of 128 and a
    closing part of 2, and every token ends accounted."""
    from pen import build as B
    from pen.keys import Keyring
    from pen_protocol import ctb, records as R
    prop = ref_in(fed.out("plan", "propose", "--key", "prod", "--year", 2027, "--line", "40:130:13000"))
    approve(fed, "prod", prop)
    prod = Keyring(fed.home).load("prod")
    kid, serial = prop.split(":")
    pref = R.make_ref(bytes.fromhex(kid), int(serial))
    store = fed.store()
    store.submit([B.issue(prod, 1000 + i, 100, pref).raw for i in range(130)])
    store.close()
    out = fed.out("plan", "close", "--key", "prod", "--year", 2027)
    assert out == ("year 2027 closed: 130 excess tokens (13000 credits) accounted into 99012027 in 2 year-end "
                   "publications; 0 approved credits never issued\n")
    store = fed.store()
    states = {ctb.token_state(t) for k, t in store.state_prefix(b"T" + prod.kid)}
    assert states == {ctb.ACCOUNTED}
    assert store.get(b"A" + ids.pack("99012027")) == 13000
    store.close()
    assert "year-closed" in fed.fails("plan", "close", "--key", "prod", "--year", 2027)


def test_a_complementary_proposal_past_the_years_uint_is_one_line(fed):
    """A council's proposals of one year fit 2^64-1 together (what its
    year end must state): the complementary one that would pass it is
    refused by the validator, in one line, nothing stored."""
    prop = ref_in(fed.out("plan", "propose", "--key", "prod", "--year", 2027, "--line", "40:1:%d" % 2 ** 63))
    approve(fed, "prod", prop)
    line = fed.fails("plan", "propose", "--key", "prod", "--year", 2027, "--complementary",
                     "--line", "40:1:%d" % 2 ** 63)
    assert "the council's proposals for 2027 would exceed 2^64-1 credits" in line
    fed("plan", "propose", "--key", "prod", "--year", 2027, "--complementary", "--line", "40:1:%d" % (2 ** 63 - 1))
