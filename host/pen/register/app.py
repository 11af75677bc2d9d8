"""`pen register`: the store register, an aiohttp app on the store device.
Every asset is served from static/ (jsQR vendored, no CDN); every sentence
the page shows is in lang/en.json. JSON in, JSON out; the logic is core.py."""
import json
import time
from pathlib import Path

from aiohttp import web

from pen.keys import SealError, sealed_public_key
from pen_protocol import check

from .core import Refused, read_scan

HERE = Path(__file__).parent
LANG = json.loads((HERE / "lang" / "en.json").read_text(encoding="utf-8"))
MAX_BODY = 16 * 1024


def _answer(a):
    return {"verdict": a.verdict, "reason": a.reason, "words": LANG["reason"].get(a.reason, a.reason),
            "detail": a.detail}


def _refused(e):
    return web.json_response({"error": e.key, "words": LANG["reason"].get(e.key, e.key), "detail": e.detail},
                             status=409)


async def _body(request):
    # JSON only: another web page in the shop's browser cannot send this
    # without a CORS preflight, which the register never grants
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="application/json only")
    try:
        d = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="a JSON body")
    if not isinstance(d, dict):
        raise web.HTTPBadRequest(text="a JSON object")
    return d


def make_app(reg, day_start=None):
    app = web.Application(client_max_size=MAX_BODY)

    async def index(request):
        return web.FileResponse(HERE / "static" / "index.html")

    async def lang(request):
        return web.json_response(LANG)

    async def scan(request):
        d = await _body(request)
        try:
            s, a = reg.check_scan(str(d.get("text", "")))
        except Refused as e:
            return _refused(e)
        out = {"kind": s[0]}
        if s[0] == "token":
            out.update(token=s[1].hex(), value=s[2])
        if a is not None:
            out["answer"] = _answer(a)
        return web.json_response(out)

    async def pay(request):
        d = await _body(request)
        try:
            s = read_scan(str(d.get("text", "")))
            if s[0] == "use":
                a, p = reg.pay_use(s[1])
            elif s[0] == "token":
                sealed = read_scan(str(d.get("book", "")))
                if sealed[0] != "sealed":
                    raise Refused("need-book")
                a, p = reg.pay_book(sealed[1], s[1], str(d.get("password", "")), str(d.get("product", "")),
                                    bool(d.get("exchange")))
            else:
                raise Refused("not-a-payment")
        except Refused as e:
            return _refused(e)
        except SealError:
            return _refused(Refused("damaged-qr"))
        return web.json_response({"id": p.id.hex(), "state": "pending", "answer": _answer(a)})

    async def change(request):
        d = await _body(request)
        try:
            value, price = int(d.get("value")), int(d.get("price"))
        except (TypeError, ValueError):
            return _refused(Refused("bad-price"))
        try:
            owe, picks = reg.change_for(value, price)
            if d.get("give"):
                book = read_scan(str(d.get("book", ""))) if d.get("book") else ("none",)
                if book[0] != "sealed":
                    raise Refused("need-book")
                reg.give_change(sealed_public_key(book[1]), picks)
        except Refused as e:
            return _refused(e)
        return web.json_response({"owe": owe, "tokens": [{"token": r.hex(), "value": v} for r, v in picks],
                                  "given": bool(d.get("give"))})

    async def day(request):
        since = day_start() if day_start else time.time() - 86400
        return web.json_response(reg.day(since))

    app.router.add_get("/", index)
    app.router.add_get("/lang", lang)
    app.router.add_post("/scan", scan)
    app.router.add_post("/pay", pay)
    app.router.add_post("/change", change)
    app.router.add_get("/day", day)
    app.router.add_static("/static", HERE / "static")
    return app


VERDICTS = (check.VALID, check.INVALID, check.INDETERMINABLE)
