"""What the bridge and end-to-end tests share: a CTB node on loopback
preloaded so a village's payments are valid, and a unix-port node behind a
raw pty (pen.bridge.serial.spawn, as `pen bridge --pty-command` does)."""
import os
import sys

from conftest import MICROPYPATH, ROOT, build_mpy, micropython_bin
from pen import build as B
from pen.keys import Signer
from pen.node.core import Node
from pen.node.server import serve_in_thread
from pen.samples import economy
from pen.store import SQLiteCTB

T0 = 1795000000


def payments(count, first_serial=100):
    """(issues, set_users, uses): count tokens of formosa-plumbing, each made
    usable by carlos, and carlos's payment with each."""
    k, ordered, n = economy()
    fp = k["formosa-plumbing"]
    carlos = Signer.from_phrase("carlos")
    prop = n["proposal"].fields[0]
    issues, users, uses = [], [], []
    for i in range(count):
        t = B.issue(fp, first_serial + i, 10, prop)
        issues.append(t)
        users.append(B.set_user(fp, t.fields[0], carlos))
        uses.append(B.use(carlos, t.fields[0], "50100000", "50100000"))
    return issues, users, uses


def ctb_node(path, count):
    """A CTB node serving on loopback with the economy and count usable
    tokens; its node key signs receipts. -> (running server, store, uses)."""
    k, ordered, n = economy()
    store = SQLiteCTB(path)
    store.submit([r.raw for r in ordered[:-3]])
    issues, users, uses = payments(count)
    store.submit([r.raw for r in issues + users])
    # the bridge's key, in the Pen folder beside the CTB (where `pen bridge --home` finds it as "bridge"),
    # named on the node as a bridge peer: the node takes only signed uploads
    from pen.keys import Keyring
    from pen.node.auth import BRIDGE, allow_peer
    kr = Keyring(os.path.dirname(str(path)))
    bridge_key = kr.load("bridge") if "bridge" in kr.names() else kr.new("bridge")
    allow_peer(store, bridge_key.public_key, "bridge", BRIDGE, rate=1e6, burst=1e6)
    srv = serve_in_thread(Node(store, node_key=k["common-node"], clock=lambda: T0 + 3600))
    srv.bridge_key = bridge_key
    srv.node_key = k["common-node"]  # for a bridge PC that holds it: receipt digests
    return srv, store, uses


# The node runs as compiled .mpy (`-m unix_node`, as a board build would:
# the compiler does not fit beside the node). A bridge node's rings (256
# delivered ids, 256 reverse paths, 512 spent refs) are ~22 KB and the unix
# port keeps every module's bytecode in the heap too (mesh 31 KB, service
# with link and cbor 16 KB; a board runs them frozen, from flash): it starts
# in 96 KB (measured 22:50). 128 KB ran out once in the kill test when a
# full journal went out on PENDING at once (now 4 records per loop); the
# tests give it 192 KB, the heap is not what they measure.
NODE_HEAP = "192k"


def node_command(journal, *extra, heap=NODE_HEAP):
    build_mpy()
    return "%s -X heapsize=%s -m unix_node --link stdio --bridge --journal %s %s" % (
        micropython_bin(), heap, journal, " ".join(extra))


def node_env():
    return dict(os.environ, MICROPYPATH=MICROPYPATH)


def python_env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "host"), str(ROOT / "protocol")]))


PYTHON = sys.executable
