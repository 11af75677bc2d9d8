# Boot a provisioned fake flash under the MicroPython unix port: mount the
# folder at "/", put stand-ins for the board's hardware (machine, lora) in
# sys.modules -- never on the flash -- then run main.py's run() as a board
# does for RUN_MS and report what the node did to its flash.
import sys
import os
import vfs
import asyncio

root, run_ms = sys.argv[1], int(sys.argv[2])
vfs.umount("/")
vfs.mount(vfs.VfsPosix(root), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]


class Os:
    """os, but for rename: the unix port's VfsPosix mounted at "/" fails a
    rename between absolute paths with ENOENT (a board's littlefs does not;
    pen_node.pairing.FileStore renames /pen.pair.tmp to /pen.pair). The
    working directory is "/", so the same names without it are the same
    files. Only this harness installs it, never the flash."""

    def __getattr__(self, name):
        return getattr(os, name)

    def rename(self, old, new):
        os.rename(old.lstrip("/"), new.lstrip("/"))


sys.modules["os"] = Os()


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 2
    PULL_DOWN = 3
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, n, mode=None, pull=None, value=None):
        self.n = n

    def value(self, v=None):
        return 0  # no radio IRQ pending, link line idle

    def irq(self, handler=None, trigger=None):
        pass


class SPI:
    def __init__(self, *a, **kw):
        pass


class Machine:
    Pin = Pin
    SPI = SPI

    @staticmethod
    def unique_id():
        return b"\x24\x0a\xc4\x00\x12\x34"

    @staticmethod
    def lightsleep(ms):
        import time
        time.sleep_ms(min(ms, 20))  # as if an event woke it: the boot test has a deadline


class Esp32:
    WAKEUP_ALL_LOW = 0
    WAKEUP_ANY_HIGH = 1

    @staticmethod
    def wake_on_ext0(pin, level):
        pass

    @staticmethod
    def wake_on_ext1(pins, level):
        pass


made = []


class Modem:
    def __init__(self, *a, **kw):
        made.append(kw.get("lora_cfg"))

    def recv_continuous(self):
        return self  # an async iterator, as the driver's (MicroPython has no async generators)

    def __aiter__(self):
        return self

    async def __anext__(self):
        await asyncio.sleep(3600)  # a quiet channel

    async def send(self, frame):
        pass

    def _cmd(self, fmt, *args):  # SPI commands (regulator, IRQ mask) go nowhere
        pass

    def _radio_isr(self, pin):
        pass


class Lora:
    AsyncSX1262 = Modem
    AsyncSX1276 = Modem


sys.modules["machine"] = Machine
sys.modules["lora"] = Lora
sys.modules["esp32"] = Esp32
import gc
import main

served = []
serve = main.serve


async def serving(node, modem, clock, link=None, **kw):
    """main.serve, noting what the boot path built and the heap it holds
    (boot-only modules gone) as the node's tasks start."""
    gc.collect()
    served.append((node, link, kw.get("ble"), gc.mem_alloc()))
    await serve(node, modem, clock, link, **kw)

main.serve = serving


async def boot():
    try:
        await asyncio.wait_for(main.run(), run_ms / 1000)
    except asyncio.TimeoutError:
        pass

asyncio.run(boot())
node, link, ble, heap = served[0]
print("radio", made[0]["freq_khz"], made[0]["sf"])
print("link", main.LinkService is not None)
print("journal", os.stat(main.JOURNAL)[6], "duty", os.stat(main.DUTY)[6])
print("boot-only", " ".join(m for m in ("pen_node.radio", "pen_node.boardsleep", "pen_node.linkconf")
                            if m in sys.modules) or "gone")
print("heap", heap)
if link is not None:
    # what an unpaired peer on the line gets: STATUS, then a SUBMIT
    from pen_protocol import link as L
    for kind, payload in ((L.STATUS, b""), (L.SUBMIT, bytes(40))):
        (answer,) = L.Decoder().feed(link.feed(L.encode(kind, 7, payload), 0))
        print("unpaired", kind, answer.kind, answer.payload[0], len(node.journal.live))
    auth = link.auth
    print("pairing", auth is not None and (auth.code, auth.attempts, len(auth.paired())), ble is not None and ble.name)
