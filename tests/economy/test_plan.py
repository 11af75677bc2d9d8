"""pen plan: consumption and production proposals, the two trees, where they
disagree (table, JSON, picture), complementary proposals, limits, year end;
and pen accounts."""
import json

import pytest

from .conftest import approve, ref_in


def _plan(fed):
    fed("publish", "price", "--key", "prod", "--product", "40141600", "--credits", "150")
    fed("publish", "price", "--key", "mill", "--product", "50", "--credits", "20")
    cons = ref_in(fed.out("plan", "propose", "--key", "cons", "--year", "2027",
                          "--line", "40141600:100:15000", "--line", "50180000:1000:20000"))
    out = fed.out("plan", "propose", "--key", "ana", "--year", "2027", "--line", "50100000:30:600")
    assert "consumption proposal" in out and "(summed into Cons)" in out
    prod = ref_in(fed.out("plan", "propose", "--key", "prod", "--year", "2027",
                          "--line", "40141600:120:0", "--line", "40171500:500:9000"))
    mill = ref_in(fed.out("plan", "propose", "--key", "mill", "--year", "2027",
                          "--line", "50180000:800:0", "--line", "50100000:30:0", "--line", "80111600:2000:4000"))
    return cons, prod, mill


def test_compare_demand_and_supply_by_category(fed, tmp_path):
    _plan(fed)
    data = json.loads(fed.out("plan", "compare", "--year", "2027", "--level", "2", "--json"))
    rows = {r["category"]: r for r in data["rows"]}
    # valves: consumers 15,000; supply 120 x 150; pipes 9,000 of inputs, no supply
    assert rows["40"] == {"category": "40", "name": "Distribution and conditioning systems", "consumers": 15000,
                          "inputs": 9000, "demand": 24000, "supply": 18000, "difference": -6000,
                          "verdict": "short by 6000"}
    # food: 20,000 + 600 demanded; 830 x 20 = 16,600 offered
    assert rows["50"]["demand"] == 20600 and rows["50"]["supply"] == 16600
    assert rows["80"]["inputs"] == 4000 and rows["80"]["verdict"] == "short by 4000"
    assert data["unpriced_outputs"] == []
    out = fed.out("plan", "compare", "--year", "2027", "--level", "8", "--plot", tmp_path / "plan.svg")
    assert "50180000     Bread" in out and "picture: " in out
    svg = (tmp_path / "plan.svg").read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    fed("plan", "compare", "--year", "2027", "--plot", tmp_path / "plan.png")
    assert (tmp_path / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sums_up_both_trees(fed, tmp_path):
    _plan(fed)
    cons = json.loads(fed.out("plan", "sums", "--year", "2027", "--tree", "consumption", "--json"))
    by = {(r["node"], r["category"]): r["credits"] for r in cons}
    # the individual's line is summed into her council, the council into the federation and the economy
    assert by[("Cons", "50")] == by[("Fed", "50")] == by[("the economy", "50")] == 20600
    prod = json.loads(fed.out("plan", "sums", "--year", "2027", "--tree", "production", "--level", "4", "--json"))
    rows = {(r["node"], r["side"], r["category"]): r["quantity"] for r in prod}
    assert rows[("Fed", "output", "5018")] == 800 and rows[("Mill", "output", "5010")] == 30
    assert ("Cons", "output", "5018") not in rows
    fed("plan", "sums", "--year", "2027", "--tree", "production", "--plot", tmp_path / "tree.svg")
    assert "Production tree 2027" in (tmp_path / "tree.svg").read_text()
    assert fed.fails("plan", "sums", "--year", "2031", "--tree", "consumption", "--plot", tmp_path / "t.svg") == \
        "pen: error: no consumption proposals for 2031: nothing to draw"
    text = fed.out("plan", "sums", "--year", "2027", "--tree", "production")
    assert text.splitlines()[1] == "the economy: input 13000 credits, output 34600 credits"


def test_proposal_refusals(fed):
    _plan(fed)
    assert fed.fails("plan", "propose", "--key", "cons", "--year", "2027", "--line", "11:1:1") == \
        "pen: error: product 11 is not in the catalogue (see: pen products list)"
    err = fed.fails("plan", "propose", "--key", "cons", "--year", "2028", "--line", "50:1:1")
    assert err.startswith("pen: error: product 50 is more general than the analogue categories 50100000, "
                          "50180000, 50200000")
    assert fed.fails("plan", "propose", "--key", "cons", "--year", "2028", "--line", "50100000:1:0") == \
        "pen: error: line 50100000: a consumption line states the credits it needs"
    assert "already proposed for 2027" in fed.fails("plan", "propose", "--key", "cons", "--year", "2027",
                                                    "--line", "50100000:1:1")
    assert fed.fails("plan", "propose", "--key", "cons", "--year", "2027", "--complementary",
                     "--line", "50100000:1:1") == "pen: error: nothing to complement: no approved proposal for 2027 yet"
    assert fed.fails("plan", "propose", "--key", "cons", "--year", "2028", "--complementary",
                     "--line", "50100000:1:1") == "pen: error: nothing to complement: no proposal for 2028 yet"
    assert "bad line '40:x:1'" in fed.fails("plan", "propose", "--key", "cons", "--year", "2027", "--line", "40:x:1")
    assert "bad line '40:1:18446744073709551616'" in fed.fails("plan", "propose", "--key", "cons", "--year", "2027",
                                                               "--line", "40:1:18446744073709551616")
    assert "bad line '40:-1:1'" in fed.fails("plan", "propose", "--key", "cons", "--year", "2027",
                                             "--line", "40:-1:1")
    assert "--plot writes a .svg or .png" in fed.fails("plan", "compare", "--year", "2027", "--plot", "x.pdf")
    assert "--level must be a catalogue level" in fed.fails("plan", "compare", "--year", "2027", "--level", "13")


def test_limit_applies_to_individuals(fed):
    fed("publish", "limit", "--key", "cons", "--product", "50100000", "--quantity", "40", "--year", "2027")
    fed("plan", "propose", "--key", "ana", "--year", "2027", "--line", "501000000001:30:600")
    assert fed.fails("plan", "propose", "--key", "ana", "--year", "2027", "--complementary",
                     "--line", "50100000:11:220") == (
        "pen: error: over the limit for 50100000 (Fresh fruit): 41 proposed this year, the limit is 40 a member")
    fed("plan", "propose", "--key", "ana", "--year", "2027", "--complementary", "--line", "50100000:10:200")


def test_out_of_credits_complementary_then_year_end(fed, tmp_path):
    _, prod, _ = _plan(fed)
    approve(fed, "prod", prod)
    fed("token", "issue", "--key", "prod", "--value", "5000", "--proposal", prod)
    out = fed.out("token", "issue", "--key", "prod", "--value", "4000", "--proposal", prod)
    own = ref_in(out)
    fed("token", "assign", "--key", "prod", "--token", own, "--user", "prod")
    assert "out of credits: file a complementary proposal" in fed.out("plan", "status", "--key", "prod",
                                                                      "--year", "2027")
    comp = ref_in(fed.out("plan", "propose", "--key", "prod", "--year", "2027", "--complementary",
                          "--line", "40171500:100:2000"))
    approve(fed, "prod", comp)
    fed("token", "issue", "--key", "prod", "--value", "500", "--proposal", comp)
    status = fed.out("plan", "status", "--key", "prod", "--year", "2027")
    assert status.startswith("2027: 2 proposals (1 complementary), 11000 credits approved, 9500 issued, 1500 left")
    out = fed.out("plan", "close", "--key", "prod", "--year", "2027")
    assert out == ("year 2027 closed: 3 excess tokens (9500 credits) accounted into 99012027; 1500 approved credits "
                   "never issued\n")
    acc = json.loads(fed.out("accounts", "--year", "2027", "--json"))
    assert acc == {"rows": [{"account": "99012027", "name": "excess credits (year end)", "credits": 9500, "tokens": 3}],
                   "total": 9500}
    assert "year-closed" in fed.fails("token", "issue", "--key", "prod", "--value", "1", "--proposal", comp)
    assert "year-closed" in fed.fails("plan", "close", "--key", "prod", "--year", "2027")
    assert "not a council key" in fed.fails("plan", "close", "--key", "ana", "--year", "2027")
    assert "books balance" in fed.out("ctb", "status")


def test_accounts_roll_up_by_level_prefix_and_year(fed, tmp_path):
    cons = ref_in(fed.out("plan", "propose", "--key", "cons", "--year", "2027", "--line", "50180000:10:3000"))
    approve(fed, "cons", cons)
    refs = [ref_in(fed.out("token", "issue", "--key", "cons", "--value", v, "--proposal", cons)) for v in (1000, 700)]
    for r, (product, account) in zip(refs, (("501800000001", "501800000001"), ("50100000", "501000000009"))):
        fed("token", "assign", "--key", "cons", "--token", r, "--user", "cons")
        fed("token", "use", "--key", "cons", "--token", r, "--product", product, "--account", account)
    rows = json.loads(fed.out("accounts", "--level", "4", "--json"))["rows"]
    assert [(r["account"], r["name"], r["credits"]) for r in rows] == [("5010", "Fruits", 700),
                                                                       ("5018", "Bread and bakery", 1000)]
    assert json.loads(fed.out("accounts", "--prefix", "5018", "--json"))["total"] == 1000
    assert json.loads(fed.out("accounts", "--year", "2026", "--json"))["total"] == 0
    assert json.loads(fed.out("accounts", "--by", "product", "--level", "8", "--json"))["rows"][0]["account"] == \
        "50100000"
    fed("accounts", "--plot", tmp_path / "acc.svg")
    assert "<svg" in (tmp_path / "acc.svg").read_text()
    fed("publish", "accounts", "--key", "fed", "--year", "2027", "--level", "2")
    pub = json.loads(fed.out("publish", "list", "--kind", "accounts", "--json"))
    assert pub[0]["subject"] == 2027 and pub[0]["content"] == {"1": [["50", 1700]], "2": 1700}
    assert fed.fails("token", "use", "--key", "cons", "--token", refs[0], "--product", "11", "--account", "50") == \
        "pen: error: product 11 is not in the catalogue (see: pen products list); nothing signed"
    assert "bad --prefix" in fed.fails("accounts", "--prefix", "5a")
    assert fed.fails("accounts", "--prefix", "77", "--plot", tmp_path / "none.svg") == \
        "pen: error: no accounts to draw"


def test_missing_optional_packages_give_one_clear_line(fed, tmp_path, monkeypatch):
    _plan(fed)
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    assert fed.fails("plan", "compare", "--year", "2027", "--plot", tmp_path / "p.svg") == \
        "pen: error: pictures need matplotlib: pip install 'pen[economy]'"
    assert fed.fails("accounts", "--plot", tmp_path / "a.svg").startswith("pen: error: ")
    assert not (tmp_path / "p.svg").exists()
    monkeypatch.setitem(__import__("sys").modules, "zxingcpp", None)
    fed("keys", "show", "ana", "--out", tmp_path / "ana.png")
    assert fed.fails("keys", "import", tmp_path / "ana.png", "--name", "x") == \
        "pen: error: reading QR codes needs zxing-cpp: pip install 'pen[economy]'"
    monkeypatch.setitem(__import__("sys").modules, "fpdf", None)
    fed("keys", "seal", "ana", stdin="pw\n")
    prop = ref_in(fed.out("plan", "propose", "--key", "cons", "--year", "2028", "--line", "50180000:1:100"))
    approve(fed, "cons", prop)
    tok = ref_in(fed.out("token", "issue", "--key", "cons", "--value", "100", "--proposal", prop))
    fed("token", "assign", "--key", "cons", "--token", tok, "--user", "ana")
    assert fed.fails("book", "print", "--user", "ana", "--out", tmp_path / "b.pdf") == \
        "pen: error: printing a credit book needs fpdf2: pip install 'pen[economy]'"
    assert not (tmp_path / "b.pdf").exists()


@pytest.mark.parametrize("argv,msg", [
    (("plan", "sums", "--year", "2027", "--tree", "consumption", "--level", "1"), "--level must be a catalogue level"),
    (("plan", "status", "--key", "nobody", "--year", "2027"), "no key named 'nobody'"),
    (("products", "list", "--under", "4x"), "bad product id '4x'"),
    (("keys", "memberships", "pen:key:12"), "bad pen:key: payload"),
    (("keys", "memberships", "stranger"), "unknown key 'stranger'"),
    (("keys", "cert", "stranger", "--out", "x.txt"), "unknown key 'stranger'"),
    (("accounts", "--level", "0"), "--level must be a catalogue level"),
    (("publish", "accounts", "--key", "fed", "--year", "2027", "--prefix", "x"), "bad --prefix 'x'"),
    (("demo", "--year", "--out", "/proc/no-such/dir"), "cannot make the folder /proc/no-such/dir"),
    (("accounts", "--level", "3"), "--level must be a catalogue level: 2, 4, 6 or 8 digits"),
    (("plan", "compare", "--year", "2027", "--level", "7"), "not 7"),
    (("accounts", "--year", "99999"), "argument --year: a year is 1900 to 9999, not '99999'"),
    (("plan", "close", "--key", "prod", "--year", "27"), "argument --year: a year is 1900 to 9999, not '27'"),
    (("publish", "accounts", "--key", "fed", "--year", "x"), "argument --year: a year is 1900 to 9999, not 'x'"),
    (("publish", "price", "--key", "prod", "--product", "50", "--credits", "1", "--year", "0"), "a year is 1900"),
    (("keys", "import", "--camera", "/no/such/camera", "--name", "x"), "no camera found (/no/such/camera)"),
])
def test_bad_input_is_one_line_and_stores_nothing(fed, argv, msg):
    assert msg in fed.fails(*argv)
