"""records.parse checks fixed-length byte strings and plain uints in its own
loop (_check_fields, by the _FIXED table) and hands every other field to
_check_field: for every field of every record type and any decoded value,
both must accept or refuse alike, with the same reason and detail."""
import pytest

from pen_protocol import records as R

PROBES = ([bytes(n) for n in range(0, 70)] + [b"\x50\x10\x00\x01", b"\x12\x3f", b"\xff"]
          + [0, 1, 2, 3, 4, 5, 6, 23, 24, 255, 2 ** 64 - 1, -1, True, False, None, "", "pen", "x" * 65]
          + [[], [bytes(4)], [bytes(4), bytes(4)], [bytes(16)], [bytes(64)], [[b"\x50\x10", 1, 2]], {}, {1: 2}])


def outcome(fn, *a):
    try:
        fn(*a)
        return "ok"
    except R.RecordError as e:
        return (e.reason, e.detail)


@pytest.mark.parametrize("rtype", sorted(R.SCHEMA))
def test_fast_field_checks_agree_with_check_field_on_every_field(rtype):
    schema = R.SCHEMA[rtype]
    good = None
    for i, (name, kind) in enumerate(schema):
        for v in PROBES:
            want = outcome(R._check_field, rtype, i, kind, v)
            if want != "ok":
                continue
            good = good or {}
            good.setdefault(i, v)
    # every field has a value each check takes; then each probe in its place
    assert good is not None and set(good) == set(range(len(schema)))
    for i, (name, kind) in enumerate(schema):
        for v in PROBES:
            fields = [good[j] for j in range(len(schema))]
            fields[i] = v
            assert outcome(R._check_fields, rtype, schema, fields) == outcome(R._check_field, rtype, i, kind, v), (
                name, v)


def test_the_fixed_lengths_are_those_of_the_kinds():
    assert R._FIXED[R.F_K] == 4 and R._FIXED[R.F_R] == 8 and R._FIXED[R.F_ID] == 16 and R._FIXED[R.F_PK] == 32
    assert len(R._FIXED) == R.F_SIGS + 1
    assert [k for k in range(len(R._FIXED)) if R._FIXED[k] >= 0] == [R.F_K, R.F_R, R.F_ID, R.F_PK]


def test_a_parsed_token_record_names_its_token_and_others_none():
    from pen.samples import economy
    _, ordered, _ = economy()
    seen = set()
    for r in ordered:
        again = R.parse(r.raw)
        assert again.token_ref == (again.fields[0] if again.type in (R.ISSUE, R.SET_USER, R.USE, R.ACCOUNTED)
                                   else None)
        seen.add(again.token_ref is None)
    assert seen == {True, False}
