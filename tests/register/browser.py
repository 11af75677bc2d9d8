"""What the browser tests share: the world's store CTB copy, a unix-port node
on a pty (paired, its radio an AirBridge that plays the CTB node), the
register app and its link worker in one thread, and headless Chromium
(the system's, driven by Playwright: its own download is not used)."""
import asyncio
import os
import shutil
import socket
import threading
from pathlib import Path

import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "link"))
from kit import CTB_KEY, AirBridge, pairing_code, start_node, stop  # noqa: E402
from world import EXCHANGE, FOOD, SHOP, build  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "register" / "artifacts"  # gitignored: every screenshot of a run
DOC_SHOTS = ROOT / "docs" / "img"  # the ones docs/register.md shows (PEN_DOC_SHOTS=1 refreshes them)


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class KeepOpen:
    """The pty stays the test's: the worker's close() of a 'cut' link does
    not close it (a real serial link would be opened again)."""

    def __init__(self, port):
        self.port = port

    def __getattr__(self, name):
        return getattr(self.port, name)

    def close(self):
        pass


class Till:
    """The register app and its worker, on their own event loop thread."""

    def __init__(self, tmp, port, paired):
        from pen.transport.secure import open_session
        self.tmp = Path(tmp)
        self.port = port
        self.paired = paired
        self.cut = threading.Event()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.http = s.getsockname()[1]
        s.close()
        self.url = "http://127.0.0.1:%d/" % self.http
        self.open_session = open_session
        self.ready = threading.Event()
        self.worker = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(20), "the register did not start"

    def outbox(self):
        """The outbox as the test's thread reads it (its own connection)."""
        from pen.storeclient import Outbox
        return Outbox(self.tmp / "outbox.sqlite")

    def copy(self):
        from pen.store import SQLiteCTB
        return SQLiteCTB(self.tmp / "copy.sqlite")

    def opener(self):
        if self.cut.is_set():
            raise OSError("link cut (test)")
        return KeepOpen(self.port), self.open_session(self.port, self.paired), True

    def start_worker(self):
        from pen.register.worker import Worker
        self.worker = Worker(self.opener, self.tmp / "outbox.sqlite", [CTB_KEY.public_key], self.reg.link)
        self.worker.start()
        self.reg.spent = self.worker.ask_spent

    def stop_worker(self):
        self.worker.stop()
        self.worker.join(10)
        assert not self.worker.is_alive()
        self.reg.link.update(paired=False)

    def _run(self):
        from aiohttp import web
        from pen.register.app import make_app
        from pen.register.core import Register
        copy, self.tokens = build(self.tmp / "copy.sqlite")
        self.reg = Register(copy, self.tmp / "outbox.sqlite", FOOD, SHOP, EXCHANGE)
        self.start_worker()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(make_app(self.reg, day_start=lambda: 0))
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.http).start())
        self.ready.set()
        self.loop.run_forever()

    def close(self):
        self.stop_worker()
        fut = asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop)
        fut.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def till(tmp_path_factory):
    from pen.transport.secure import pair
    tmp = tmp_path_factory.mktemp("register")
    air = AirBridge()
    port, proc, console = start_node(tmp, "--pair", str(tmp / "pair.cbor"), "--air", str(air.port))
    try:
        paired = pair(port, pairing_code(console), SHOP.public_key)
        t = Till(tmp, port, paired)
        t.air = air
        yield t
        t.close()
    finally:
        stop(proc)
        air.close()


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        pytest.fail("no chromium: scripts/test installs the Debian package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def y4m(png, path, frames=10):
    """A still picture as a Y4M video (grey: U and V at 128), for Chromium's
    fake camera (--use-file-for-fake-video-capture)."""
    from PIL import Image
    img = Image.open(png).convert("L")
    w, h = img.size
    canvas = Image.new("L", (640, 480), 255)
    canvas.paste(img, ((640 - w) // 2, (480 - h) // 2))
    frame = b"FRAME\n" + canvas.tobytes() + bytes([128]) * (640 * 480 // 2)
    Path(path).write_bytes(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n" + frame * frames)
    return path


def camera_browser(browser, video):
    """A second Chromium whose camera films `video` (its permission prompt answered yes)."""
    return browser.browser_type.launch(executable_path=chromium_path(), headless=True, args=[
        "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        "--use-file-for-fake-video-capture=%s" % video])


@pytest.fixture
def page(browser, till):
    ctx = browser.new_context(viewport={"width": 320, "height": 640})
    p = ctx.new_page()
    p.set_default_timeout(15000)
    p.goto(till.url)
    p.wait_for_selector("#link dd")
    yield p
    ctx.close()


def shot(page, name, doc=False):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / (name + ".png")), full_page=True)
    if doc and os.environ.get("PEN_DOC_SHOTS"):
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOC_SHOTS / ("register-" + name + ".png")), full_page=True)
