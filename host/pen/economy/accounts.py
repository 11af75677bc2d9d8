"""Accounts: "product id:s also serves as account numbers ... So can
accounts [be generalised], when more general accounting information is
required." Roll-ups of the CTB by account (or product) prefix at a catalogue
level, for a plan year, as rows, JSON, a picture, or an accounts publication.

A token is counted once, at its effective use (ctb.effective_use: the
accounted USE, else the lowest-id one, as the validator credits it); its year is the year of the proposal it was issued
under (change tokens have none: they count only when no year is asked for).
"""
from pen_protocol import ctb, ids, records as R

from .catalogue import Catalogue, state_items
from .plan import PlanError, category, pyplot, save

# a CBOR uint: what a publication's row or total can state. Sums in the CTB can exceed it
# (pen_protocol.ctb.amount); a roll-up is shown whole and published only when it fits.
MAX_CREDITS = 2 ** 64 - 1


def rollup(store, prefix="", level=None, year=None, by="account"):
    """[{account, name, credits, tokens}] sorted by account, and the total."""
    props = {k[1:]: p for k, p in state_items(store, b"P")}
    cat = Catalogue.from_ctb(store)
    rows = {}
    for _, t in state_items(store, b"T"):
        u = ctb.effective_use(t)
        if u is None:
            continue
        a = ctb.token_authority(t)
        ty = ctb.proposal_year(props[a]) if ctb.token_kind(t) == R.NORMAL and a in props else None
        if year is not None and ty != year:
            continue
        product, account = ctb.use_product(u), ctb.use_account(u)
        pid = ids.unpack(account if by == "account" else product)
        if not pid.startswith(prefix):
            continue
        key = category(pid, level)
        r = rows.setdefault(key, {"account": key, "name": cat.name(key), "credits": 0, "tokens": 0})
        r["credits"] += ctb.token_value(t)
        r["tokens"] += 1
    out = [rows[k] for k in sorted(rows)]
    return out, sum(r["credits"] for r in out)


def publication_content(rows, total):
    """The content of an accounts publication (at most records.MAX_LIST rows)."""
    if not rows:
        raise PlanError("no accounts to publish")
    if len(rows) > R.MAX_LIST:
        raise PlanError("%d accounts: a publication holds at most %d; use a shorter --level or a --prefix" % (
            len(rows), R.MAX_LIST))
    for r in rows:
        if r["credits"] > MAX_CREDITS:
            raise PlanError("account %s holds %d credits, more than a publication carries (2^64-1)" % (
                r["account"], r["credits"]))
    if total > MAX_CREDITS:
        raise PlanError("the accounts add up to %d credits, more than a publication carries (2^64-1); publish "
                        "them under narrower --prefix values" % total)
    packed = sorted([ids.pack(r["account"]), r["credits"]] for r in rows)
    return {1: packed, 2: total}


def plot(rows, path, title):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(4, len(rows)) + 1.5))
    y = list(range(len(rows)))
    ax.barh(y, [r["credits"] for r in rows], color="#4c72b0")
    ax.set_yticks(y)
    ax.set_yticklabels(["%s %s" % (r["account"], r["name"][:30]) for r in rows], fontsize=8)
    ax.invert_yaxis()
    for i, r in enumerate(rows):
        ax.annotate("%d" % r["credits"], (r["credits"], i), xytext=(3, -3), textcoords="offset points", fontsize=8)
    ax.margins(x=0.1)  # room for the figures at the bars' ends
    ax.set_xlabel("credits")
    ax.set_title(title)
    fig.tight_layout()
    save(fig, path)
