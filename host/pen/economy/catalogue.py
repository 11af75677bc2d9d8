"""The product catalogue: the seed's tree of products by generalisation.

"The leafs represents specific products from specific production councils.
The root of the tree represents products in their most generalized form
"Product"." Ids are UNSPSC-style digits: segment (2), family (4), class (6),
commodity (8), then a council's own suffix for a specific product. The
catalogue is not a local file: it is the set of product PUBLICATIONs in the
CTB (checked by pen_protocol.publication), so every node reads the same one.
When two councils name the same id, the publication with the lowest record id
wins, on every node alike.

"Analogue" marks the most general category a consumer may choose; a "work"
product is work, measured in medium-effort hours and priced in credits per
hour (the seed's example: a credit is a thousandth of a medium-effort hour).
"""
import csv
import io

from pen_protocol import ctb, ids, publication as PUB, records as R, yearend

LEVEL_NAMES = {2: "segment", 4: "family", 6: "class", 8: "commodity"}
CREDITS_PER_HOUR = 1000  # "one thousandth of a hour of work at a medium effort"
ROOT = "Product"


class CatalogueError(ValueError):
    pass


def level_name(digits):
    return LEVEL_NAMES.get(len(digits), "product" if len(digits) > PUB.CATEGORY_DIGITS else "category")


def medium_effort_hours(hours, effort):
    """Time and effort recalculated into medium-effort hours: effort 1.0 is
    medium, 1.5 half again as hard."""
    if hours < 0 or effort <= 0:
        raise CatalogueError("hours must be >= 0 and effort > 0")
    return hours * effort


def work_credits(hours, effort=1.0, per_hour=CREDITS_PER_HOUR):
    return int(round(medium_effort_hours(hours, effort) * per_hour))


def state_items(store, prefix):
    if hasattr(store, "state_prefix"):
        return list(store.state_prefix(prefix))
    return sorted((k, v) for k, v in store.kv.items() if k.startswith(prefix))  # ctb.MemoryState


class Entry:
    __slots__ = ("id", "name", "flags", "unit", "publisher", "record")

    def __init__(self, pid, name, flags, unit, publisher, record):
        self.id, self.name, self.flags, self.unit, self.publisher, self.record = pid, name, flags, unit, publisher, record

    @property
    def analogue(self):
        return bool(self.flags & PUB.ANALOGUE)

    @property
    def work(self):
        return bool(self.flags & PUB.WORK)

    def as_dict(self):
        return {"id": self.id, "name": self.name, "level": level_name(self.id), "analogue": self.analogue,
                "work": self.work, "unit": self.unit, "publisher": self.publisher.hex()}


class Catalogue:
    def __init__(self, entries=()):
        self.entries = {}
        for e in entries:
            old = self.entries.get(e.id)
            if old is None or e.record < old.record:
                self.entries[e.id] = e

    @classmethod
    def from_ctb(cls, store):
        out = []
        for k, u in state_items(store, b"U"):
            if ctb.publication_kind(u) == PUB.PRODUCT:
                c = ctb.publication_content(u)
                out.append(Entry(ids.unpack(ctb.publication_subject(u)), c[1], c.get(2, 0), c.get(3),
                                 R.ref_kid(k[1:]), ctb.publication_id(u)))
        return cls(out)

    def __len__(self):
        return len(self.entries)

    def get(self, pid):
        return self.entries.get(pid)

    def ancestors(self, pid):
        """Published entries above pid, most general first."""
        return [self.entries[pid[:n]] for n in range(ids.MIN_DIGITS, len(pid)) if pid[:n] in self.entries]

    def parent(self, pid):
        a = self.ancestors(pid)
        return a[-1].id if a else None

    def children(self, pid=None):
        return sorted(e.id for e in self.entries.values() if self.parent(e.id) == pid)

    def known(self, pid):
        """A product the catalogue names, or one under a published category."""
        return pid in self.entries or bool(self.ancestors(pid))

    def name(self, pid):
        e = self.entries.get(pid)
        if e is not None:
            return e.name
        if pid.startswith(yearend.SPECIAL_SEGMENT):
            return "excess credits (year end)" if pid.startswith(yearend.EXCESS_FAMILY) else "Pen special accounts"
        a = self.ancestors(pid)
        return (a[-1].name + " / " + pid) if a else pid

    def too_general(self, pid):
        """The analogue categories below pid: a consumer naming pid chose a
        form more general than the catalogue allows (empty if fine)."""
        return sorted(e.id for e in self.entries.values() if e.analogue and e.id != pid and e.id.startswith(pid))

    def check_line(self, pid, consumer):
        """Refuses a proposal line the catalogue does not allow."""
        if not self.entries:
            return
        if not self.known(pid):
            raise CatalogueError("product %s is not in the catalogue (see: pen products list)" % pid)
        if consumer:
            gen = self.too_general(pid)
            if gen:
                raise CatalogueError("product %s is more general than the analogue categor%s %s: consumers "
                                     "choose an analogue category or something more specific" % (
                                         pid, "y" if len(gen) == 1 else "ies", ", ".join(gen[:3])))

    def tree_lines(self, under=None):
        """Indented lines of the tree (under a category, or from the root)."""
        out = [] if under else [ROOT]

        def walk(pid, depth):
            e = self.entries[pid]
            tags = [level_name(pid)] + (["analogue"] if e.analogue else []) + (
                ["work, " + (e.unit or "hour")] if e.work else ([e.unit] if e.unit else []))
            out.append("%s%-14s %s  (%s)" % ("  " * depth, pid, e.name, ", ".join(tags)))
            for c in self.children(pid):
                walk(c, depth + 1)
        roots = [under] if under in self.entries else [p for p in self.children(None)
                                                        if under is None or p.startswith(under)]
        for r in roots:
            walk(r, 1)
        return out


def parse_flag(text, what, line):
    t = (text or "").strip().lower()
    if t in ("", "0", "no", "n", "false"):
        return False
    if t in ("1", "yes", "y", "true", "x"):
        return True
    raise CatalogueError("line %d: %s must be yes or no, not %r" % (line, what, text))


def read_csv(text):
    """Rows of a catalogue CSV: a header with id,name and optionally
    analogue,work,unit. Returns [(id, content)]; any bad row refuses the
    whole file, naming its line."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"id", "name"} <= set(f.strip() for f in reader.fieldnames):
        raise CatalogueError("the first line must be a header with at least: id,name (and analogue,work,unit)")
    out, seen = [], {}
    for n, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        pid = row.get("id", "")
        try:
            packed = ids.pack(pid)
        except ids.ProductIdError as e:
            raise CatalogueError("line %d: %s (%r)" % (n, e, pid))
        if pid in seen:
            raise CatalogueError("line %d: id %s repeats line %d" % (n, pid, seen[pid]))
        seen[pid] = n
        content = content_for(row.get("name", ""), parse_flag(row.get("analogue"), "analogue", n),
                              parse_flag(row.get("work"), "work", n), row.get("unit") or None, n)
        out.append((pid, packed, content))
    if not out:
        raise CatalogueError("no products in the file")
    return out


def content_for(name, analogue, work, unit, line=None):
    where = ("line %d: " % line) if line else ""
    if not name or len(name.encode()) > R.MAX_TEXT:
        raise CatalogueError("%sname must be 1 to %d bytes" % (where, R.MAX_TEXT))
    if work:
        unit = unit or PUB.WORK_UNIT
        if unit != PUB.WORK_UNIT:
            raise CatalogueError("%swork is measured in medium-effort hours: unit must be %r" % (where, PUB.WORK_UNIT))
    if unit is not None and not 0 < len(unit.encode()) <= R.MAX_TEXT:
        raise CatalogueError("%sunit must be 1 to %d bytes" % (where, R.MAX_TEXT))
    content = {1: name}
    flags = (PUB.ANALOGUE if analogue else 0) | (PUB.WORK if work else 0)
    if flags:
        content[2] = flags
    if unit:
        content[3] = unit
    return content


def check_paid_product(store, pid):
    """A USE names a known product, once the economy has a catalogue: the
    check the paying commands make before signing (see docs/economy.md for
    why the validator does not)."""
    cat = Catalogue.from_ctb(store)
    if len(cat) and not cat.known(pid):
        raise CatalogueError("product %s is not in the catalogue (see: pen products list); nothing signed" % pid)
