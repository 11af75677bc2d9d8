"""Ed25519 keys on the host (PyNaCl): a keyring folder of named keys.

keys/NAME.key     a private key's seed in hex (mode 0600)
keys/NAME.sealed  a private key sealed with a password (no plain copy is kept)
keys/NAME.pub     someone else's public key, imported (a contact)

A sealed key is the credit book's: "Carlos signs by entering his password"
(the seed). Its payload, `pen:sealed:` + base64url of

    version 1 | opslimit u32 | memlimit u32 | salt 16 | public key 32 | nonce 24 | secretbox(seed) 48

is printed as a QR in the book; a store device reads it, the user types the
password, and the seed exists in the clear only in that device's memory while
the USE is signed. The box key is Argon2id(password, salt) at libsodium's
"interactive" cost (~0.15 s and 64 MiB here); unseal refuses costs outside
[MIN, MODERATE] so a crafted QR can neither make a weak seal look normal nor
ask a store device for gigabytes.
"""
import base64
import os
import re
import struct
from pathlib import Path

from nacl.signing import SigningKey

from pen_protocol import sign

KEY_PAYLOAD = "pen:key:"
SEALED_PAYLOAD = "pen:sealed:"
SEAL_VERSION = 1
_SEAL_HEAD = ">BII"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}$")


class SealError(ValueError):
    """A sealed key that cannot be opened: wrong password or damaged."""


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


# -- sealing -------------------------------------------------------------------

def _argon():
    from nacl.pwhash import argon2id
    return argon2id


def seal_seed(seed, password, ops=None, mem=None):
    """The sealed payload (text) of a 32-byte seed under password."""
    from nacl import secret, utils
    a = _argon()
    ops = a.OPSLIMIT_INTERACTIVE if ops is None else ops
    mem = a.MEMLIMIT_INTERACTIVE if mem is None else mem
    if not password:
        raise SealError("the password may not be empty")
    salt = utils.random(a.SALTBYTES)
    box = secret.SecretBox(a.kdf(secret.SecretBox.KEY_SIZE, password.encode(), salt, ops, mem))
    nonce = utils.random(secret.SecretBox.NONCE_SIZE)
    pk = Signer(seed).public_key
    raw = struct.pack(_SEAL_HEAD, SEAL_VERSION, ops, mem) + salt + pk + nonce + box.encrypt(seed, nonce).ciphertext
    return SEALED_PAYLOAD + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_sealed(payload):
    """(ops, mem, salt, public key, nonce, ciphertext); raises SealError."""
    a = _argon()
    text = payload.strip()
    if not text.startswith(SEALED_PAYLOAD):
        raise SealError("not a sealed key (expected %s...)" % SEALED_PAYLOAD)
    body = text[len(SEALED_PAYLOAD):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise SealError("sealed key is damaged (bad base64)")
    head = struct.calcsize(_SEAL_HEAD)
    if len(raw) != head + 16 + 32 + 24 + 48:
        raise SealError("sealed key is damaged (%d bytes)" % len(raw))
    version, ops, mem = struct.unpack(_SEAL_HEAD, raw[:head])
    if version != SEAL_VERSION:
        raise SealError("sealed key of unknown version %d" % version)
    if not (a.OPSLIMIT_MIN <= ops <= a.OPSLIMIT_MODERATE and a.MEMLIMIT_MIN <= mem <= a.MEMLIMIT_MODERATE):
        raise SealError("sealed key asks for an Argon2id cost outside the accepted range")
    p = head
    salt, pk, nonce, ct = raw[p:p + 16], raw[p + 16:p + 48], raw[p + 48:p + 72], raw[p + 72:]
    return ops, mem, salt, pk, nonce, ct


def sealed_public_key(payload):
    return parse_sealed(payload)[3]


def unseal_payload(payload, password, name=""):
    """The Signer inside a sealed payload; SealError on a wrong password."""
    from nacl import exceptions, secret
    ops, mem, salt, pk, nonce, ct = parse_sealed(payload)
    box = secret.SecretBox(_argon().kdf(secret.SecretBox.KEY_SIZE, (password or "").encode(), salt, ops, mem))
    try:
        seed = box.decrypt(ct, nonce)
    except exceptions.CryptoError:
        raise SealError("wrong password (or a damaged sealed key)")
    s = Signer(seed, name)
    if s.public_key != pk:
        raise SealError("sealed key is damaged (its public key does not match)")
    return s


# -- payloads ----------------------------------------------------------------

def parse_public(text):
    """A public key from `pen:key:<64 hex>` or 64 hex digits, else None."""
    t = text.strip()
    if t.lower().startswith(KEY_PAYLOAD):
        t = t[len(KEY_PAYLOAD):]
        if not re.fullmatch(r"[0-9a-fA-F]{64}", t):
            raise ValueError("bad %s payload: expected 64 hex digits after it" % KEY_PAYLOAD)
    if re.fullmatch(r"[0-9a-fA-F]{64}", t):
        return bytes.fromhex(t)
    return None


def key_payload(public_key):
    return KEY_PAYLOAD + bytes(public_key).hex()


class Keyring:
    def __init__(self, home):
        self.dir = Path(home) / "keys"

    def _file(self, name, ext):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError("bad key name %r: letters, digits and _ . @ + - only (not a key or a payload)" % (name,))
        return self.dir / (name + ext)

    def path(self, name):
        return self._file(name, ".key")

    def sealed_path(self, name):
        return self._file(name, ".sealed")

    def contact_path(self, name):
        return self._file(name, ".pub")

    def _taken(self, name):
        for ext, what in ((".key", "a private key"), (".sealed", "a sealed key"), (".pub", "a contact")):
            if self._file(name, ext).exists():
                return what
        return None

    def _write_new(self, p, text):
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(str(p), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")

    def new(self, name):
        p = self.path(name)
        taken = self._taken(name)
        if taken:
            raise FileExistsError("%s named %r exists already" % (taken, name))
        s = Signer.generate(name)
        self._write_new(p, s.seed.hex())
        return s

    def load(self, name):
        p = self.path(name)
        try:
            text = p.read_text().strip()
        except FileNotFoundError:
            if self.sealed_path(name).exists():
                raise KeyError("key %r is sealed: it signs only with its password" % name)
            if self.contact_path(name).exists():
                raise KeyError("%r is a contact (someone else's public key): it cannot sign here" % name)
            raise KeyError("no key named %r in %s (list them with: pen keys show)" % (name, self.dir))
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

    def sealed_names(self):
        return sorted(p.stem for p in self.dir.glob("*.sealed")) if self.dir.exists() else []

    def contact_names(self):
        return sorted(p.stem for p in self.dir.glob("*.pub")) if self.dir.exists() else []

    # -- sealed keys --------------------------------------------------------

    def seal(self, name, password, ops=None, mem=None):
        """Seal a stored key with password: the sealed file replaces the
        plain one (written first, then the plain file is overwritten and
        removed)."""
        s = self.load(name)
        payload = seal_seed(s.seed, password, ops, mem)
        self._write_new(self.sealed_path(name), payload)
        p = self.path(name)
        with open(p, "r+") as f:
            f.write("0" * 64)
            f.flush()
            os.fsync(f.fileno())
        p.unlink()
        return payload

    def is_sealed(self, name):
        return self.sealed_path(name).exists() and not self.path(name).exists()

    def sealed_payload(self, name):
        try:
            return self.sealed_path(name).read_text().strip()
        except FileNotFoundError:
            raise KeyError("no sealed key named %r (seal one with: pen keys seal NAME)" % name)

    def unseal(self, name, password):
        """The Signer of a sealed key; SealError on a wrong password. The
        seed is never written back to disk."""
        return unseal_payload(self.sealed_payload(name), password, name)

    def import_sealed(self, name, payload):
        parse_sealed(payload)
        taken = self._taken(name)
        if taken:
            raise FileExistsError("%s named %r exists already" % (taken, name))
        self._write_new(self.sealed_path(name), payload.strip())

    # -- contacts and public keys --------------------------------------------

    def import_public(self, name, public_key):
        taken = self._taken(name)
        if taken:
            raise FileExistsError("%s named %r exists already" % (taken, name))
        self._write_new(self.contact_path(name), key_payload(public_key))

    def public_key(self, text):
        """A public key named any way a person would: a pen:key: payload,
        64 hex digits, a contact, a sealed key or a private key name.
        Never advises creating a key: a name that matches nothing is
        unknown, and a payload or hex is used as it is."""
        pk = parse_public(text)
        if pk is not None:
            return pk
        if not _NAME.match(text):
            raise ValueError("%r is not a key: give a key name, a contact (pen keys import), 64 hex digits or a "
                             "%s payload" % (text, KEY_PAYLOAD))
        if self.contact_path(text).exists():
            return parse_public(self.contact_path(text).read_text())
        if self.sealed_path(text).exists():
            return sealed_public_key(self.sealed_payload(text))
        if self.path(text).exists():
            return self.load(text).public_key
        raise KeyError("unknown key %r: give a key name, a contact (pen keys import NAME PAYLOAD), 64 hex digits "
                       "or a %s payload" % (text, KEY_PAYLOAD))
