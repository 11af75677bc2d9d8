"""Ed25519 keys on the host (PyNaCl): a keyring folder of named keys."""
import os
from pathlib import Path

from nacl.signing import SigningKey

from pen_protocol import sign


class Signer:
    """A signing key: .public_key (32 bytes), .kid (4 bytes), callable on a
    message to sign it (the shape records.encode wants)."""

    def __init__(self, seed, name=""):
        self._sk = SigningKey(bytes(seed))
        self.seed = bytes(seed)
        self.name = name
        self.public_key = bytes(self._sk.verify_key)
        self.kid = sign.kid(self.public_key)

    @classmethod
    def generate(cls, name=""):
        return cls(os.urandom(32), name)

    @classmethod
    def from_phrase(cls, phrase):
        """Deterministic key from a phrase: demos and test vectors only."""
        import hashlib
        return cls(hashlib.sha256(b"pen/1/demo-key\x00" + phrase.encode()).digest(), phrase)

    def __call__(self, message):
        return self._sk.sign(bytes(message)).signature


class Keyring:
    def __init__(self, home):
        self.dir = Path(home) / "keys"

    def path(self, name):
        if not name or "/" in name or name.startswith("."):
            raise ValueError("bad key name %r" % name)
        return self.dir / (name + ".key")

    def new(self, name):
        p = self.path(name)
        if p.exists():
            raise FileExistsError("key %r exists already" % name)
        self.dir.mkdir(parents=True, exist_ok=True)
        s = Signer.generate(name)
        fd = os.open(str(p), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(s.seed.hex() + "\n")
        return s

    def load(self, name):
        p = self.path(name)
        try:
            text = p.read_text().strip()
        except FileNotFoundError:
            raise KeyError("no key named %r (create it with: pen keys new %s)" % (name, name))
        try:
            seed = bytes.fromhex(text)
            if len(seed) != 32:
                raise ValueError
        except ValueError:
            raise ValueError("key file %s is damaged" % p)
        return Signer(seed, name)

    def names(self):
        if not self.dir.exists():
            return []
        return sorted(p.stem for p in self.dir.glob("*.key"))
