"""A receipt digest reaches the store through its node (a T_DIGEST frame
heard from the air, EV_RECEIPT on the link) and accounts the payments it
names only when it verifies against the pinned CTB node key; a forged
digest, one from an unpinned key, a replayed or stale one, a truncated or
oversized one changes nothing and says why."""
import pytest

import kit  # noqa: F401
from kit import CTB_KEY, use
from pen import build as B
from pen.bridge.digests import DigestSigner
from pen.keys import Signer
from pen.storeclient import ACCOUNTED, SENT, Outbox, StoreClient
from pen.storeclient.client import REPLAY_WINDOW_S
from pen.transport.testing import VirtualClock, served_port
from pen_protocol import digest as G
from pen_protocol import frame as F
from pen_protocol.airtime import PRESETS
from pen_node.journal import Journal
from kit import MemStorage
from pen_node.mesh import MeshNode
from pen_node.service import LinkService
from medium_node import XorShift

OTHER = Signer.from_phrase("digest-store other node")
T = 1795000000


def rig(tmp_path):
    clock = VirtualClock()
    svc = LinkService(MeshNode(5, PRESETS["eu868-sf9"], Journal(MemStorage(8192)), XorShift(5)))
    port = served_port(clock, lambda d: svc.feed(d, clock.ms()), poll=lambda: svc.poll(clock.ms()))
    return StoreClient(port, Outbox(tmp_path / "o.sqlite"), [CTB_KEY.public_key], clock=clock, wall=clock), svc, clock


def digest(uses, key=CTB_KEY, t=T):
    raw, _ = DigestSigner(key, clock=lambda: t).sign([B.accounted(key, u.fields[0], u.id, t).raw for u in uses])
    return raw


def hear(svc, clock, raw):
    """The node hears the digest flooded from its bridge (node 1)."""
    svc.node.on_frame(F.fragment(raw, 1, F.BROADCAST, 1, 0, 3)[0], -90, 20, clock.ms())


def paid(tmp_path, n):
    sc, svc, clock = rig(tmp_path)
    uses = [use(100 + i) for i in range(n)]
    for u in uses:
        assert sc.pay(u.raw, wait_s=0.5).state == SENT
    return sc, svc, clock, uses


def test_a_digest_heard_from_the_air_accounts_every_payment_it_names(tmp_path):
    sc, svc, clock, uses = paid(tmp_path, 3)
    strangers = [use(900 + i) for i in range(4)]  # payments of other stores in the same digest
    raw = digest(strangers[:2] + uses[:2] + strangers[2:])
    hear(svc, clock, raw)
    sc.listen(1)
    assert [sc.outbox.get(u.id).state for u in uses] == [ACCOUNTED, ACCOUNTED, SENT]
    assert sc.outbox.get(uses[0].id).receipt == raw
    assert sc.rejected == []
    assert svc.node.spent.lookup(strangers[0].fields[0]) is not None  # the village spent set heard them all


@pytest.mark.parametrize("make,why", [
    (lambda us: digest(us)[:-1] + bytes((digest(us)[-1] ^ 1,)), "bad-signature"),
    (lambda us: digest(us, key=OTHER), "unpinned-key"),
    (lambda us: digest(us)[:-5], "malformed: bad-length"),
    (lambda us: digest(us)[:-12], "bad-signature"),  # cut by a whole entry's length: the signature catches it
    (lambda us: digest(us)[:50], "malformed: truncated"),
    (lambda us: digest(us)[:9] + digest(us)[9:21] * 15 + digest(us)[-64:], "malformed: too-long"),
])
def test_a_bad_digest_changes_nothing_and_says_why(tmp_path, make, why):
    sc, svc, clock, uses = paid(tmp_path, 2)
    assert sc.receipt(make(uses)) == why
    assert [sc.outbox.get(u.id).state for u in uses] == [SENT, SENT]
    assert sc.rejected[-1][1] == why


def test_a_forged_digest_from_the_air_changes_nothing_and_the_real_one_still_counts(tmp_path):
    sc, svc, clock, uses = paid(tmp_path, 1)
    good = digest(uses)
    hear(svc, clock, good[:-1] + bytes((good[-1] ^ 1,)))  # an insider's sealed forgery
    sc.listen(1)
    assert sc.outbox.get(uses[0].id).state == SENT and sc.rejected[-1][1] == "bad-signature"
    hear(svc, clock, good)  # the node kept the ref: the real digest still reaches the store
    sc.listen(1)
    assert sc.outbox.get(uses[0].id).state == ACCOUNTED


def test_a_replayed_digest_changes_nothing_and_says_replayed(tmp_path):
    sc, svc, clock, uses = paid(tmp_path, 2)
    raw = digest(uses[:1])
    assert sc.receipt(raw) is None
    sc.outbox.db.execute("UPDATE payments SET state = 'sent' WHERE id = ?", (uses[0].id,))  # as if never taken
    assert sc.receipt(raw) == "replayed"
    assert sc.outbox.get(uses[0].id).state == SENT


def test_a_digest_older_than_the_window_is_stale_and_the_window_is_pruned(tmp_path):
    sc, svc, clock, uses = paid(tmp_path, 3)
    old = digest(uses[:1], t=T)
    assert sc.receipt(digest(uses[1:2], t=T + REPLAY_WINDOW_S + 1)) is None
    assert sc.receipt(old) == "stale"
    assert sc.outbox.get(uses[0].id).state == SENT
    assert sc.receipt(digest(uses[2:3], t=T + 5)) is None  # late but within the window: taken
    assert sc.outbox.db.execute("SELECT COUNT(*) FROM digests").fetchone()[0] == 2


def test_a_digest_for_another_use_of_the_same_token_does_not_account_ours(tmp_path):
    """A payer who spent one token twice: the CTB accounted the other USE.
    The digest names the token with the other USE's id prefix: ours stays sent."""
    sc, svc, clock, uses = paid(tmp_path, 1)
    mine = uses[0]
    theirs = B.use(kit.USER, mine.fields[0], "501000000002", "501000000002")
    assert theirs.id[:4] != mine.id[:4]
    assert sc.receipt(digest([theirs])) == "no payment of ours"
    assert sc.outbox.get(mine.id).state == SENT
