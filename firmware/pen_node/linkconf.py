"""The link's options in /pen.json, for a board's main.py (two calls):

    auth = link_auth(cfg, os.urandom, show)    # pairing on -> LinkAuth, else None
    svc = LinkService(node, auth)
    ble = ble_link(cfg, svc, "pen-17")         # a BleLink when BLE is on, else None
    # then: asyncio.create_task(ble.serve(clock)), and events go to ble.send too

"pair": whether the link needs pairing; by default it does on a store-node
("role": "store-node", what provisioning writes): a store's phone pays
through it, so nobody else on its serial line or in BLE range may (issue
11). A bridge's link goes to its own PC on a cable and stays open unless
"pair" says otherwise.
"pair_file" (default /pen.pair) holds the pairing state; provisioning may
write it with a code it prints (pen_protocol.linkauth.state_bytes). show(code)
is how the board shows an open code: a display, or a console that is not
the link (the USB serial link must carry nothing but frames) — or None when
the code was printed at provisioning.
"ble": the name the node advertises ("" or false: no BLE). By default a
store-node advertises the name main.py gives (pen-<addr>) when its build has
aioble, and a build without it runs serial only; a name set explicitly
needs aioble (ImportError at boot otherwise).
"""
PAIR_FILE = "/pen.pair"
STORE_NODE = "store-node"


def pairing_on(cfg):
    return bool(cfg.get("pair", cfg.get("role") == STORE_NODE))


def link_auth(cfg, rand, show=None):
    if not pairing_on(cfg):
        return None
    from .pairing import FileStore, LinkAuth
    auth = LinkAuth(FileStore(cfg.get("pair_file", PAIR_FILE)), rand)
    if not auth.paired() and auth.code is None:
        auth.new_code()
    if auth.code is not None and show is not None:
        show(auth.code)
    return auth


def ble_link(cfg, service, default_name=None):
    asked = "ble" in cfg
    name = cfg["ble"] if asked else default_name if cfg.get("role") == STORE_NODE else None
    if not name:
        return None
    try:
        from .ble import BleLink
    except ImportError:
        if asked:
            raise
        return None  # a store-node built without aioble: serial only
    return BleLink(service, name)
