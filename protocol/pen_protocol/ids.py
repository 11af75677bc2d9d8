"""Product ids, which double as account numbers.

A product id is a string of decimal digits read as a path in the product tree:
"40" is a UNSPSC segment, "40141600" a commodity class, "401416000012" a
specific product of a specific production council. A prefix is a
generalisation, so accounts sum up the tree by prefix.

On the wire an id is packed BCD: two digits a byte, an odd length padded with
a final 0xF nibble. 12 digits cost 6 bytes, where a CBOR integer of the same
value would cost 9, and that keeps a USE frame within 96 bytes.
"""

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

MIN_DIGITS = const(2)  # a UNSPSC segment
# UNSPSC's 8 digits plus 4 for the producing council's own products; also the
# most a USE frame can carry within its 96-byte budget (docs/protocol.md).
MAX_DIGITS = const(12)
MAX_BYTES = const(6)


class ProductIdError(ValueError):
    pass


def pack(digits):
    """'40141600' -> b'\\x40\\x14\\x16\\x00'."""
    if not isinstance(digits, str) or not (MIN_DIGITS <= len(digits) <= MAX_DIGITS):
        raise ProductIdError("product id must be %d to %d digits" % (MIN_DIGITS, MAX_DIGITS))
    out = bytearray((len(digits) + 1) // 2)
    for i in range(len(digits)):
        d = ord(digits[i]) - 48
        if not 0 <= d <= 9:
            raise ProductIdError("product id must be decimal digits")
        if i & 1:
            out[i >> 1] |= d
        else:
            out[i >> 1] = d << 4
    if len(digits) & 1:
        out[-1] |= 0x0F
    return bytes(out)


def unpack(raw):
    """Packed BCD -> digit string; rejects any non-canonical form."""
    n = len(raw)
    if not 1 <= n <= MAX_BYTES:
        raise ProductIdError("product id of %d bytes" % n)
    chars = []
    for i in range(n):
        b = raw[i]
        hi = b >> 4
        lo = b & 15
        if hi > 9:
            raise ProductIdError("bad BCD digit")
        chars.append(chr(48 + hi))
        if lo == 15 and i == n - 1:
            break
        if lo > 9:
            raise ProductIdError("bad BCD digit")
        chars.append(chr(48 + lo))
    s = "".join(chars)
    if len(s) < MIN_DIGITS:
        raise ProductIdError("product id too short")
    return s


def is_valid(raw):
    """unpack() would accept raw (checked without building the string: every
    record's product and account pass here)."""
    n = len(raw)
    if not 1 <= n <= MAX_BYTES:
        return False
    for i in range(n):
        b = raw[i]
        if b >> 4 > 9:
            return False
        if b & 15 > 9 and not (b & 15 == 15 and i == n - 1):
            return False
    # one byte with the pad nibble is a single digit, under MIN_DIGITS
    return n > 1 or raw[0] & 15 != 15


def within(product, category):
    """True if digit-string product lies under category in the product tree."""
    return product.startswith(category)
