"""The link's options in /pen.json, for a board's main.py (two calls):

    auth = link_auth(cfg, os.urandom, show)    # "pair": true -> LinkAuth, else None
    svc = LinkService(node, auth)
    ble = ble_link(cfg, svc)                   # "ble": "pen-17" -> BleLink, else None
    # then: asyncio.create_task(ble.serve(clock)), and events go to ble.send too

"pair_file" (default /pen.pair) holds the pairing state; provisioning may
write it with a code it prints (pen_protocol.linkauth.state_bytes). show(code)
is how the board shows an open code: a display, or a console that is not
the link (the USB serial link must carry nothing but frames) — or None when
the code was printed at provisioning.
"""
PAIR_FILE = "/pen.pair"


def link_auth(cfg, rand, show=None):
    if not cfg.get("pair"):
        return None
    from .pairing import FileStore, LinkAuth
    auth = LinkAuth(FileStore(cfg.get("pair_file", PAIR_FILE)), rand)
    if not auth.paired() and auth.code is None:
        auth.new_code()
    if auth.code is not None and show is not None:
        show(auth.code)
    return auth


def ble_link(cfg, service):
    name = cfg.get("ble")
    if not name:
        return None
    from .ble import BleLink
    return BleLink(service, name)
