"""Offline checks per the seed's "Using": valid / invalid / indeterminable."""
from pen import build as B
from pen.keys import Signer
from pen.samples import economy
from pen_protocol import check, ctb, records as R


def copy_of(records):
    st = ctb.MemoryState()
    led = ctb.Ledger(st)
    for r in records:
        assert led.submit(r).ok
    return st


def setup():
    k, ordered, n = economy()
    fp = k["formosa-plumbing"]
    carlos = Signer.from_phrase("carlos")
    t = B.issue(fp, 5, 1000, n["proposal"].fields[0])
    su = B.set_user(fp, t.fields[0], carlos)
    base = ordered[:-1]
    return k, n, base, t, su, carlos


def test_unspent_in_live_ctb_is_valid():
    k, n, base, t, su, carlos = setup()
    a = check.check_token(copy_of(base + [t, su]), t.fields[0], live=True)
    assert (a.verdict, a.reason) == (check.VALID, "unspent")


def test_unspent_in_an_old_copy_is_indeterminable():
    k, n, base, t, su, carlos = setup()
    a = check.check_token(copy_of(base + [t, su]), t.fields[0])
    assert (a.verdict, a.reason) == (check.INDETERMINABLE, "copy-may-be-old")


def test_token_newer_than_the_copy_is_indeterminable_when_signatures_check():
    k, n, base, t, su, carlos = setup()
    pay = B.use(carlos, t.fields[0], "50100000", "50100000")
    a = check.check_token(copy_of(base), t.fields[0], [t.raw, su.raw, pay.raw])
    assert a.verdict == check.INDETERMINABLE


def test_spent_token_is_invalid():
    k, n, base, t, su, carlos = setup()
    spent = B.use(carlos, t.fields[0], "50100000", "50100000")
    copy = copy_of(base + [t, su, spent])
    a = check.check_token(copy, t.fields[0], [B.use(carlos, t.fields[0], "11", "11").raw])
    assert (a.verdict, a.reason) == (check.INVALID, "already-spent")
    assert a.evidence is not None and a.evidence.type == R.CONFLICT


def test_forged_user_signature_is_invalid():
    k, n, base, t, su, carlos = setup()
    thief = Signer.from_phrase("thief")
    a = check.check_token(copy_of(base + [t, su]), t.fields[0], [B.use(thief, t.fields[0], "11", "11").raw])
    assert (a.verdict, a.reason) == (check.INVALID, "bad-signature")


def test_village_spent_set_is_hearsay_cannot_know_yet_never_invalid():
    # the node's word is unverified (issue 10, item 9: one forged frame made an
    # honest token INVALID at a151bf1)
    k, n, base, t, su, carlos = setup()
    a = check.check_token(copy_of(base + [t, su]), t.fields[0], spent={t.fields[0]})
    assert (a.verdict, a.reason) == (check.INDETERMINABLE, "spent-in-village")


def test_check_changes_nothing_in_the_copy():
    k, n, base, t, su, carlos = setup()
    copy = copy_of(base + [t, su])
    before = repr(sorted(copy.kv.items()))
    check.check_token(copy, t.fields[0], [B.use(carlos, t.fields[0], "11", "11").raw])
    assert repr(sorted(copy.kv.items())) == before


def test_malformed_presented_record_is_invalid():
    k, n, base, t, su, carlos = setup()
    a = check.check_token(copy_of(base), t.fields[0], [b"\x0a\x00"])
    assert (a.verdict, a.reason) == (check.INVALID, "malformed")
