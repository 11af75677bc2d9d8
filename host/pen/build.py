"""Builders for every record: one function per record type, taking a Signer
(pen.keys) and plain values. Used by the `pen` command, the demo, tests and
the golden-vector generator, so records are made in one place."""
from pen_protocol import ids, records as R


def _kid(k):
    return k.kid if hasattr(k, "kid") else bytes(k)


def genesis_consent(founder, name, founders, time):
    """One founder's consent to a genesis (64 bytes): it signs
    records.genesis_consent(name, founders, time)."""
    return bytes(founder(R.genesis_consent(name, [_kid(f) for f in founders], int(time))))


def genesis(founders, name, time, consents=None):
    """founders: Signers in order (the first is the economy's federation and
    signs the record). consents: {kid: 64-byte signature} for founders whose
    keys are elsewhere; the others sign here."""
    kids = [_kid(f) for f in founders]
    consents = consents or {}
    sigs = [consents[k] if k in consents else genesis_consent(f, name, kids, time) for f, k in zip(founders, kids)]
    return R.encode(R.GENESIS, [name, kids, int(time), sigs], founders[0])


def council(signer, name, kind, parent=None):
    kind = R.KINDS.index(kind) if isinstance(kind, str) else kind
    return R.encode(R.COUNCIL, [signer.public_key, name, kind, _kid(parent) if parent is not None else None], signer)


def member(council_signer, member_key, role):
    role = R.ROLES.index(role) if isinstance(role, str) else role
    pk = member_key.public_key if hasattr(member_key, "public_key") else bytes(member_key)
    return R.encode(R.MEMBER, [council_signer.kid, pk, role], council_signer)


def votation_open(owner, serial, subject, about, electorate, deadline, epoch=0):
    """electorate: the councils of membership epoch `epoch` (any order; the
    record lists them ascending, as the validator requires)."""
    subject = R.SUBJECTS.index(subject) if isinstance(subject, str) else subject
    ref = R.make_ref(owner.kid, serial)
    return R.encode(R.VOTATION_OPEN, [ref, subject, about, sorted(_kid(e) for e in electorate), int(deadline),
                                      int(epoch)], owner)


def membership_about(council_record, attempt=0):
    """about of an ADMIT or DISMEMBER votation: the council's COUNCIL record
    id (binding its full key) and the attempt number at this epoch."""
    rid = council_record.id if hasattr(council_record, "id") else bytes(council_record)
    return [rid, int(attempt)]


def exchange_about(shop, amount, account):
    return [_kid(shop), int(amount), ids.pack(account)]


def vote(voter, votation_ref, choice):
    choice = R.CHOICES.index(choice) if isinstance(choice, str) else choice
    return R.encode(R.VOTE, [voter.kid, votation_ref, choice], voter)


def votation_close(owner, open_rec, votes, time):
    """votes: the VOTE Records to list (the owner's view). A council that
    voted more than once counts once, with its lowest-id vote listed."""
    tally = [0, 0, 0]
    counted = set()
    for v in sorted(votes, key=lambda r: r.id):
        if v.fields[0] not in counted:
            counted.add(v.fields[0])
            tally[v.fields[2]] += 1
    ids_ = sorted(v.id for v in votes)
    return R.encode(R.VOTATION_CLOSE, [open_rec.fields[0], open_rec.id, tally[R.YES], tally[R.NO],
                                       tally[R.ABSTAIN], ids_, int(time)], owner)


def proposal(council_signer, serial, year, lines):
    """lines: (product id digits, quantity, credits)."""
    return R.encode(R.PROPOSAL, [R.make_ref(council_signer.kid, serial), int(year),
                                 [[ids.pack(p), int(q), int(c)] for p, q, c in lines]], council_signer)


def issue(issuer, serial, value, authority, change=False):
    return R.encode(R.ISSUE, [R.make_ref(issuer.kid, serial), int(value), authority,
                              R.CHANGE if change else R.NORMAL], issuer)


def set_user(issuer, token_ref, user_key):
    pk = user_key.public_key if hasattr(user_key, "public_key") else bytes(user_key)
    return R.encode(R.SET_USER, [token_ref, pk], issuer)


def use(user, token_ref, product, account):
    return R.encode(R.USE, [token_ref, ids.pack(product), ids.pack(account)], user)


def accounted(node, token_ref, use_id, time):
    return R.encode(R.ACCOUNTED, [token_ref, use_id, node.kid, int(time)], node)


def publication(publisher, serial, kind, subject, content):
    kind = R.PUB_KINDS.index(kind) if isinstance(kind, str) else kind
    return R.encode(R.PUBLICATION, [R.make_ref(publisher.kid, serial), kind, subject, content], publisher)
