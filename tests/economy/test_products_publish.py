"""pen products and pen publish: the catalogue and the per-kind schemas,
through the command, with their bad input."""
import json

from pen_protocol import ids


def test_sample_catalogue_is_a_tree_with_analogue_and_work(fed):
    out = fed.out("products", "list")
    assert out.splitlines()[0] == "Product"
    assert "  40             Distribution and conditioning systems  (segment)" in out
    assert "      40141600       Valves  (commodity, analogue, valve)" in out
    rows = json.loads(fed.out("products", "list", "--json", "--under", "80"))
    assert rows == [{"id": "80", "name": "Management and business services", "level": "segment", "analogue": False,
                     "work": False, "unit": None, "publisher": rows[0]["publisher"]},
                    {"id": "80111600", "name": "Temporary personnel services", "level": "commodity",
                     "analogue": True, "work": True, "unit": "hour", "publisher": rows[0]["publisher"]}]


def test_specific_product_by_its_production_council(fed):
    fed("products", "add", "--key", "prod", "401416000001", "Prod brass valve", "--unit", "valve")
    assert "401416000001" in fed.out("products", "list", "--under", "401416")
    err = fed.fails("products", "add", "--key", "cons", "401416000002", "Not ours")
    assert err == ("pen: error: publication rejected: bad-publication: a specific product (more than 8 digits) "
                   "is published by its production council (nothing stored)")


def test_catalogue_csv_refusals_name_the_line_and_store_nothing(fed, tmp_path):
    cases = {
        "name,id\n": "no products in the file",
        "id;name\n40,x\n": "the first line must be a header",
        "id,name\n40,Ok\n4x,Bad\n": "line 3: product id must be decimal digits ('4x')",
        "id,name\n40,Ok\n40,Again\n": "line 3: id 40 repeats line 2",
        "id,name,analogue\n40,Ok,maybe\n": "line 2: analogue must be yes or no, not 'maybe'",
        "id,name,work,unit\n72,Work,yes,day\n": "line 2: work is measured in medium-effort hours",
        "id,name\n40,\n": "line 2: name must be 1 to 64 bytes",
    }
    for text, msg in cases.items():
        f = tmp_path / "c.csv"
        f.write_text(text)
        err = fed.fails("products", "import", "--key", "fed", f)
        assert msg in err and "nothing published" in err, (text, err)
    assert "cannot read" in fed.fails("products", "import", "--key", "fed", tmp_path / "missing.csv")


def test_hours_in_medium_effort(pen):
    assert pen.out("products", "hours", "--hours", "8", "--effort", "1.25") == \
        "10.00 medium-effort hours = 10000 credits (at 1000 credits an hour)\n"
    assert pen.fails("products", "hours", "--hours", "-1") == "pen: error: hours must be >= 0 and effort > 0"


def test_publish_every_kind_and_list(fed):
    fed("publish", "price", "--key", "prod", "--product", "40141600", "--credits", "150", "--unit", "valve",
        "--year", "2027")
    fed("publish", "limit", "--key", "cons", "--product", "50100000", "--quantity", "40", "--unit", "kg")
    fed("publish", "council", "--key", "prod", "--description", "We make valves", "--locality", "Formosa")
    rows = json.loads(fed.out("publish", "list", "--json", "--kind", "price"))
    assert [(r["subject"], r["content"]) for r in rows] == [("40141600", {"1": 150, "2": "valve", "3": 2027})]
    assert len(json.loads(fed.out("publish", "list", "--json", "--kind", "limit"))) == 1


def test_publish_refusals(fed):
    assert fed.fails("publish", "limit", "--key", "prod", "--product", "50", "--quantity", "3") == (
        "pen: error: publication rejected: bad-publication: limits are set by consumption councils and "
        "federations (nothing stored)")
    assert "bad product id '5x'" in fed.fails("publish", "price", "--key", "prod", "--product", "5x",
                                              "--credits", "1")
    assert fed.fails("publish", "price", "--key", "prod", "--product", "50", "--credits", "-1") == \
        "pen: error: the price must be a whole number from 0 to 2^64-1"
    assert fed.fails("publish", "limit", "--key", "cons", "--product", "50", "--quantity", str(2 ** 64)) == \
        "pen: error: the limit must be a whole number from 0 to 2^64-1"
    assert fed.fails("publish", "council", "--key", "prod", "--description", "x" * 65) == \
        "pen: error: --description must be 1 to 64 bytes"
    assert "no key named 'nobody'" in fed.fails("publish", "council", "--key", "nobody", "--description", "x")
    assert fed.fails("publish", "accounts", "--key", "fed", "--year", "2027") == \
        "pen: error: no accounts to publish for 2027"


def test_publication_content_is_the_validators_not_the_commands(fed):
    """A hand-made publication that skips the command is refused by the CTB."""
    from pen import build as B
    from pen.keys import Keyring
    from pen.store import BatchRejected
    import pytest
    k = Keyring(fed.home).load("prod")
    store = fed.store()
    with pytest.raises(BatchRejected) as e:
        store.submit([B.publication(k, 77, "price", ids.pack("40"), {1: "free"}).raw])
    assert e.value.verdict.reason == "bad-publication"
