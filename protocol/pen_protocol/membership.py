"""Memberships of one key, and who may propose.

The seed: "a person have one relation to it's consumption council and one
ore more relations to workers councils". One key may therefore hold several
memberships: b"K"+kid keeps [key, council, role] of the key's smallest
(council, role) pair, so the state does not depend on which certificate
arrived first, and b"R"+kid lists every [council, role] once a key holds
more than one (a key with one membership has no M entry, as before).

A proposal is signed by an admitted council or by an individual: a member
key certified with the role "proposer" by an admitted consumption council
(the individual's consumption proposal, summed into that council's plan; it
authorises no issue, since only councils put proposals to the vote).
"""

from . import records as R


def _reject(reason, detail=""):
    from .ctb import Reject
    return Reject(reason, detail)


def of(st, kid):
    """Every [council, role] the key kid holds, smallest first."""
    m = st.get(b"R" + kid)
    if m is not None:
        return m
    k = st.get(b"K" + kid)
    return [[k[1], k[2]]] if k else []


def add(st, kid, pk, council, role):
    """A further membership of a known member key (ctb.Ledger._member,
    after the certifying council's signature is checked)."""
    k = st.get(b"K" + kid)
    if k[0] != pk:
        raise _reject("key-exists", "key id " + kid.hex() + " is taken by another key")
    held = of(st, kid)
    pair = [council, role]
    if pair in held:
        raise _reject("already-member", "%s is already %s of %s" % (kid.hex(), R.ROLES[role], council.hex()))
    held = held + [pair]
    held.sort()
    st.put(b"R" + kid, held)
    st.put(b"K" + kid, [pk, held[0][0], held[0][1]])


def check_new(st, kid, pk, council, role):
    """Before the signature check: raises for a membership that cannot be
    added; returns True when the key already holds another one."""
    k = st.get(b"K" + kid)
    if k is None:
        return False
    if k[0] != pk:
        raise _reject("key-exists", "key id " + kid.hex() + " is taken by another key")
    if [council, role] in of(st, kid):
        raise _reject("already-member", "%s is already %s of %s" % (kid.hex(), R.ROLES[role], council.hex()))
    return True


def proposer_key(st, kid):
    """The public key that signs a proposal under kid, or None if kid is
    not an individual proposer (the caller then treats kid as a council)."""
    k = st.get(b"K" + kid)
    if k is None:
        return None
    for council, role in of(st, kid):
        c = st.get(b"C" + council)
        if role == R.ROLE_PROPOSER and c is not None and c[4] == 1 and c[2] == R.CONSUMPTION:
            return k[0]
    raise _reject("not-a-proposer", "key %s is not a proposer of an admitted consumption council" % kid.hex())
