"""What each kind of PUBLICATION may say, checked by the validator.

The seed: "many types of information that needs to be published or shared.
Like prices and limits, information about products or councils, accounts
from different part of the economy". A PUBLICATION is [ref, kind, subject,
content]; content is a map with small int keys. This module holds one table
per kind: what the subject is, which content keys exist, which are
required, and who may publish. A publication breaking its schema is
rejected whole with the reason "bad-publication" and a detail naming the
key, so a typo never becomes a price every store believes.

    kind      subject              content
    price     product id           1 credits per unit (uint), 2 unit (text), 3 year (uint)
    limit     product id           1 quantity per member a year (uint), 2 unit, 3 year       consumption or federation
    product   product id           1 name (text), 2 flags (uint: 1 analogue, 2 work), 3 unit
                                   leaves (more than 8 digits) only by production councils;
                                   work products are measured in "hour" (medium-effort hours)
    council   publisher's own kid  1 description (text), 2 locality (text)
    accounts  year (uint)          1 [[account, credits]...] ascending, 2 total (= their sum)
    year-end  year (uint)          1 [token ref...] ascending (excess tokens), 2 unissued credits,
                                   3 part (1: more follow; absent in the one that closes the year)
                                   (yearend.py applies it)

Keys 1.. are the content; numbering starts at 1 so that 0 stays free.
"""

from . import ids, records as R

PRICE = 0
LIMIT = 1
PRODUCT = 2
COUNCIL = 3
ACCOUNTS = 4
YEAR_END = 5

# product flags
ANALOGUE = 1  # the most general form a consumer is able to choose (the seed)
WORK = 2  # work, measured in time and effort as medium-effort hours
FLAGS_ALL = 3
WORK_UNIT = "hour"

# a leaf is a specific product of a specific production council: UNSPSC's
# 8 digits (segment/family/class/commodity) plus the council's own suffix
CATEGORY_DIGITS = 8
LEVELS = (2, 4, 6, 8)

_U = 0  # uint
_T = 1  # text
_ACCT = 2  # [[account, credits]...] ascending by account
_REFS = 3  # [ref...] strictly ascending

# kind -> (subject kind, {key: (value kind, required)})
_SUBJ_PRODUCT = 0
_SUBJ_KID = 1
_SUBJ_YEAR = 2

SCHEMAS = {
    PRICE: (_SUBJ_PRODUCT, {1: (_U, True), 2: (_T, False), 3: (_U, False)}),
    LIMIT: (_SUBJ_PRODUCT, {1: (_U, True), 2: (_T, False), 3: (_U, False)}),
    PRODUCT: (_SUBJ_PRODUCT, {1: (_T, True), 2: (_U, False), 3: (_T, False)}),
    COUNCIL: (_SUBJ_KID, {1: (_T, True), 2: (_T, False)}),
    ACCOUNTS: (_SUBJ_YEAR, {1: (_ACCT, True), 2: (_U, True)}),
    YEAR_END: (_SUBJ_YEAR, {1: (_REFS, True), 2: (_U, True), 3: (_U, False)}),
}


class PublicationError(ValueError):
    def __init__(self, detail):
        super().__init__(detail)
        self.detail = detail


def _uint(x):
    return isinstance(x, int) and x is not True and x is not False and x >= 0


def _text(x):
    return isinstance(x, str) and 0 < len(x.encode()) <= R.MAX_TEXT


def _product(x):
    return isinstance(x, bytes) and ids.is_valid(x)


def _value_ok(vkind, v):
    if vkind == _U:
        return _uint(v)
    if vkind == _T:
        return _text(v)
    if vkind == _ACCT:
        if not (isinstance(v, list) and 0 < len(v) <= R.MAX_LIST):
            return False
        prev = None
        for row in v:
            if not (isinstance(row, list) and len(row) == 2 and _product(row[0]) and _uint(row[1])):
                return False
            if prev is not None and row[0] <= prev:
                return False
            prev = row[0]
        return True
    if vkind == _REFS:
        if not (isinstance(v, list) and len(v) <= R.MAX_LIST):
            return False
        prev = b""
        for x in v:
            if not (isinstance(x, bytes) and len(x) == R.REF_LEN) or x <= prev:
                return False
            prev = x
        return True
    return False


def check_shape(kind, subject, content):
    """Raises PublicationError(detail) unless subject and content fit the
    kind's schema. Needs no state: a board can run it."""
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise PublicationError("unknown kind %d" % kind)
    subj, keys = schema
    if subj == _SUBJ_PRODUCT and not _product(subject):
        raise PublicationError("subject must be a product id")
    if subj == _SUBJ_KID and not (isinstance(subject, bytes) and len(subject) == 4):
        raise PublicationError("subject must be a council key id")
    if subj == _SUBJ_YEAR and not (_uint(subject) and 1900 <= subject <= 9999):
        raise PublicationError("subject must be a year")
    if not isinstance(content, dict):
        raise PublicationError("content must be a map")
    for k in content:
        if k not in keys:
            raise PublicationError("unknown content key %r" % (k,))
    for k in keys:
        vkind, required = keys[k]
        if k not in content:
            if required:
                raise PublicationError("content key %d is required" % k)
            continue
        if not _value_ok(vkind, content[k]):
            raise PublicationError("content key %d has the wrong form" % k)
    if kind == PRODUCT:
        flags = content.get(2, 0)
        if flags > FLAGS_ALL:
            raise PublicationError("unknown product flags %d" % flags)
        if flags & WORK and content.get(3) != WORK_UNIT:
            raise PublicationError("work is measured in medium-effort hours: unit must be %r" % WORK_UNIT)
    elif kind == YEAR_END and content.get(3, 1) != 1:
        raise PublicationError("content key 3 marks a part: it is 1 or absent")
    elif kind == ACCOUNTS:
        total = 0
        for row in content[1]:
            total += row[1]
        if total != content[2]:
            raise PublicationError("total %d is not the sum of the accounts (%d)" % (content[2], total))


def digits(subject):
    return len(ids.unpack(subject))


def check_publisher(kind, subject, content, publisher_kid, publisher_council):
    """Who may publish what. publisher_council is the council state value
    [key, name, kind, parent, status]. Raises PublicationError."""
    ckind = publisher_council[2]
    if kind == COUNCIL and subject != publisher_kid:
        raise PublicationError("a council publishes information about itself only")
    if kind == LIMIT and ckind not in (R.CONSUMPTION, R.FEDERATION):
        raise PublicationError("limits are set by consumption councils and federations")
    if kind == PRODUCT and digits(subject) > CATEGORY_DIGITS and ckind != R.PRODUCTION:
        raise PublicationError("a specific product (more than %d digits) is published by its production council"
                               % CATEGORY_DIGITS)


def check(st, rec, publisher_kid, publisher_council):
    """The validator's hook (ctb.Ledger._publication): raises
    PublicationError when the publication breaks its kind's rules. Year-end
    publications are further checked by yearend.check."""
    kind, subject, content = rec.fields[1], rec.fields[2], rec.fields[3]
    check_shape(kind, subject, content)
    check_publisher(kind, subject, content, publisher_kid, publisher_council)
