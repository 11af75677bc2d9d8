"""`pen demo --year`: the scripted year runs, balances, writes its pictures
and books, and is the same CTB on every run."""
import json

from pen.cli import main
from pen.economy import year
from pen.store import SQLiteCTB
from pen_protocol import membership


class Quiet:
    def say(self, text=""):
        pass

    def step(self, text):
        pass


def test_year_runs_balances_and_is_reproducible(tmp_path, capsys):
    rc = main(["demo", "--year", "--json", "--out", str(tmp_path / "a")])
    summary = json.loads(capsys.readouterr().out)
    assert rc == 0 and summary["balanced"]
    assert summary["files"] == ["accounts-2027.svg", "carlos-book-2.pdf", "carlos-book.pdf", "plan-2027.svg",
                                "tree-consumption-2027.svg", "tree-production-2027.svg"]
    for name in ("accounts-2027.svg", "plan-2027.svg", "tree-consumption-2027.svg", "tree-production-2027.svg"):
        assert "<svg" in (tmp_path / "a" / name).read_text()
    assert summary["credit_book"] == {"wrong_password": "refused", "change_left": 9000, "tokens_read_back": 3}
    assert summary["late_issue"] == "year-closed"
    assert summary["excess"] == 1500 and summary["closed"]["formosa"] == [1, 0]
    assert {r["account"]: r["credits"] for r in summary["accounts"]}["84"] == 12000
    plan = {r["category"]: r["verdict"] for r in summary["plan"]}
    assert plan == {"40": "short by 9000", "50": "short by 800", "80": "balanced"}
    assert summary["books"]["tokens_by_state"]["USED"] == 0  # every payment got its receipt
    db = SQLiteCTB(tmp_path / "a" / "ctb.sqlite")
    ana = year.Signer.from_phrase("year/ana").kid
    assert len(membership.of(db, ana)) == 2
    db.close()
    again = year.run(tmp_path / "b", Quiet())
    assert again["state_digest"] == summary["state_digest"]
