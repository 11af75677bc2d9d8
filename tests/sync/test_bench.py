"""`pen bench sync`: the figures dict and the command's JSON line."""
import json
import types

import pytest

from pen.sync import bench

KEYS = {"records", "differences", "bytes", "round_trips", "ratio_to_floor"}


def test_bench_returns_the_figures_with_their_types():
    out = bench.run_sync_bench(records=20_000, differences=200, seed=3)
    assert KEYS <= set(out)
    assert out["records"] == 20_000 and out["differences"] == 200
    assert isinstance(out["bytes"], int) and isinstance(out["round_trips"], int)
    assert out["ratio_to_floor"] == round(out["bytes"] / (16 * 200), 3)
    assert out["bytes"] == out["initiator_bytes"] + out["responder_bytes"]
    assert out["mode"] == "symbols" and 2 <= out["round_trips"] <= 3
    assert out["ratio_to_floor"] < 4


def test_bench_with_no_differences_has_no_ratio():
    out = bench.run_sync_bench(records=1000, differences=0, seed=1)
    assert out["mode"] == "identical" and out["round_trips"] == 1 and out["ratio_to_floor"] is None


def test_bench_refuses_more_differences_than_records():
    with pytest.raises(ValueError):
        bench.run_sync_bench(records=10, differences=30)


def test_command_prints_one_json_object(capsys):
    args = types.SimpleNamespace(json=True, records=5000, differences=100, seed=2)
    assert bench.cmd(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert KEYS <= set(out) and out["records"] == 5000


@pytest.mark.slow
def test_million_record_replicas_differing_in_1000_ids_within_4x_the_floor():
    out = bench.run_sync_bench(records=1_000_000, differences=1000, seed=0)
    assert out["ratio_to_floor"] <= 4 and out["round_trips"] <= 3
