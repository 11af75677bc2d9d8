"""The one thread that owns the link: it opens the store client, sends every
open payment in the outbox (StoreClient.resume), listens for receipts, and
reports the link's state. A lost link is opened again after a pause; nothing
is lost meanwhile because the outbox is on disk."""
import queue
import threading
import time

from pen.storeclient import Outbox, StoreClient

PAUSE_S = 1.0


class Worker(threading.Thread):
    def __init__(self, open_link, outbox_path, ctb_keys, state, wait_s=2.0, clock=time.time):
        """open_link() -> (port, session client or None, paired bool)."""
        threading.Thread.__init__(self, daemon=True)
        self.open_link = open_link
        self.outbox_path = outbox_path
        self.ctb_keys = ctb_keys
        self.state = state  # Register.link, read by the page
        self.wait_s = wait_s
        self.clock = clock
        self.stopping = threading.Event()
        self.asks = queue.Queue()

    def ask_spent(self, ref, timeout_s=3.0):
        """Has the village node seen the token spent (its SPENT set, the one
        `pen token check --spent-from` asks)? True / False, or None when
        the link cannot say now. Any thread may ask; the worker sends it."""
        if not self.state.get("paired") or not self.is_alive():
            return None
        box = {"done": threading.Event(), "spent": None}
        self.asks.put((bytes(ref), box))
        box["done"].wait(timeout_s)
        return box["spent"]

    def _answer_asks(self, sc):
        while True:
            try:
                ref, box = self.asks.get_nowait()
            except queue.Empty:
                return
            try:
                s = sc.check(ref, timeout_s=2.0)
                box["spent"] = s.spent
            finally:
                box["done"].set()

    def stop(self):
        self.stopping.set()

    def run(self):
        ob = Outbox(self.outbox_path)
        while not self.stopping.is_set():
            port = None
            try:
                port, client, paired = self.open_link()
                self.state.update(paired=paired, error="")
                sc = StoreClient(port, ob, self.ctb_keys, client=client)
                heard = sc._pump

                def pump(wanted):  # the time of the last frame heard, for the page
                    before = len(sc.outbox.open_payments())
                    f = heard(wanted)
                    if f is not None or len(sc.outbox.open_payments()) != before:
                        self.state["heard"] = self.clock()
                    return f
                sc._pump = pump
                while not self.stopping.is_set():
                    self._answer_asks(sc)
                    if ob.open_payments():
                        sc.resume(wait_s=self.wait_s)
                        self.state["heard"] = self.clock()
                    else:
                        sc.listen(0.2)
            except Exception as e:  # the link broke: say so, open it again
                self.state.update(paired=False, error=str(e) or e.__class__.__name__)
                self.stopping.wait(PAUSE_S)
            finally:
                if port is not None:
                    try:
                        port.close()
                    except OSError:
                        pass
        ob.close()
