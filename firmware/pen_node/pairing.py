"""The node's side of pairing and sealed link sessions: LinkAuth (in
pen_protocol.linkauth, shared with the bridge's Meshtastic gateway) and
FileStore, its state in a file on the board's flash.

    auth = LinkAuth(storage, rand)       storage: load() -> bytes|None, save(bytes)
    code = auth.new_code()               show it on the console; MAX_ATTEMPTS tries
    LinkService(node, auth=auth)         the service then serves HELLO, PAIR_*,
                                         OPEN and SEALED only; everything else
                                         gets ERROR unpaired

What persists (storage, CBOR [code or None, attempts left, [[kid, pk, psk]...]]):
the open code, how many attempts it has left, the paired phones. An attempt
is counted and saved before the node answers PAIR_START, so pulling the
power does not give an attacker his attempts back; a run that fails or is
abandoned is still spent. After MAX_ATTEMPTS the code is dead until the
operator shows a new one. Pairing consumes the code (one phone per code).

Attempts are also spaced: after the n-th the next waits 2**n s (ERROR locked,
"too soon"). What an attacker can do: with 5 attempts per code shown and a 6-digit code,
guess it with probability 5 / 10**6 per code the operator shows; listening
to a pairing gives nothing to test offline (CPace). He can always jam the
link or reset a session (OPEN) — denial of service, never a forged frame.
"""

from pen_protocol.linkauth import LinkAuth, MemStore, MAX_ATTEMPTS, MAX_PHONES  # noqa: F401


class FileStore:
    """Pairing state in one small file, replaced atomically (write, rename)."""

    def __init__(self, path):
        self.path = path

    def load(self):
        try:
            with open(self.path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def save(self, data):
        import os
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, self.path)
