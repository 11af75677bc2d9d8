"""A fake ESP32 on a pty: mpremote (the real program) talks to it as to a
board on /dev/ttyUSB0.

The pty's far end speaks MicroPython's REPL protocol (shared/runtime/pyexec.c):
Ctrl-A enters the raw REPL ("raw REPL; CTRL-B to exit\\r\\n>"); code then
Ctrl-D is answered "OK", the output, 0x04, the error text, 0x04 and ">"; a
raw-paste request (Ctrl-E 'A' Ctrl-A) is accepted with "R\\x01" and a window
size, the host sends at most a window before the board grants another
(0x01), and Ctrl-D there is acknowledged with 0x04 instead of "OK"; an empty
Ctrl-D is a soft reset ("OK\\r\\nMPY: soft reboot\\r\\n" and the raw banner
again); Ctrl-B leaves for the friendly REPL; Ctrl-C abandons the line.

The code runs in a real MicroPython (the unix port, fakeboard_mp.py) whose
"/" is a host folder, so what mpremote writes lands there as on a board's
flash, and `machine.reset()` reboots the fake (a new interpreter)."""
import os
import pty
import subprocess
import threading
import tty
from pathlib import Path

HERE = Path(__file__).resolve().parent
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
PASTE_WINDOW = 512  # bytes the host may send before the board grants more
FRIENDLY = b"\r\nMicroPython (Pen fake board) on esp32s3\r\nType \"help()\" for more information.\r\n>>> "


class FakeBoard:
    def __init__(self, root, micropython, boot_text=b""):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.exe = micropython
        self.master, slave = pty.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self.raw = False
        self.code = bytearray()
        self.paste = b""
        self.pasting = None  # bytes received in this raw-paste window, or None
        self.resets = 0
        self.chunks = []  # every code chunk run, for the tests to read
        self.child = None
        self._stop = False
        self._write(boot_text)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    # -- the interpreter ------------------------------------------------------
    def _start(self):
        self.child = subprocess.Popen([self.exe, str(HERE / "fakeboard_mp.py"), str(self.root)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def _run(self, code):
        if self.child is None or self.child.poll() is not None:
            self._start()
        self.chunks.append(code.decode())
        self.child.stdin.write(b"%d\n" % len(code) + code)
        self.child.stdin.flush()
        eofs = 0
        while eofs < 2:
            b = self.child.stdout.read(1)
            if not b:  # the interpreter died: what a crashed board shows
                self._write(b"\x04" + self.child.stderr.read() + b"\x04")
                break
            eofs += b == b"\x04"
            self._write(b)
        if self.chunks[-1].rstrip().endswith("machine.reset()"):
            self.child.wait(timeout=10)
            self.resets += 1
            self.raw = False
            self._write(FRIENDLY)

    def _soft_reset(self):
        if self.child is not None:
            self.child.kill()
            self.child.wait()
            self.child = None
        self._write(b"OK\r\nMPY: soft reboot\r\n" + RAW_BANNER)

    # -- the serial line ----------------------------------------------------------
    def _write(self, data):
        if data and not self._stop:
            os.write(self.master, data)

    def _serve(self):
        while not self._stop:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for b in data:
                self._byte(b)

    def _byte(self, b):
        if self.pasting is not None:
            return self._paste_byte(b)
        if self.paste or (self.raw and b == 0x05 and not self.code):
            self.paste += bytes((b,))
            if len(self.paste) == 3:
                self._write(b"R\x01" + PASTE_WINDOW.to_bytes(2, "little"))
                self.paste, self.pasting = b"", 0
            return
        if b == 0x01:
            self.raw, self.code = True, bytearray()
            self._write(b"\r\n" + RAW_BANNER)
        elif b == 0x02:
            self.raw = False
            self._write(FRIENDLY)
        elif b == 0x03:
            self.code = bytearray()
            if not self.raw:
                self._write(b"\r\n>>> ")
        elif not self.raw:
            return  # the friendly REPL's line editing is not needed by mpremote
        elif b == 0x04:
            if not self.code:
                self._soft_reset()
                return
            self._write(b"OK")
            self._execute()
        else:
            self.code.append(b)

    def _paste_byte(self, b):
        if b == 0x04:
            self.pasting = None
            self._write(b"\x04")
            return self._execute()
        self.code.append(b)
        self.pasting += 1
        if self.pasting == PASTE_WINDOW:
            self.pasting = 0
            self._write(b"\x01")

    def _execute(self):
        code, self.code = bytes(self.code), bytearray()
        self._run(code)
        if self.raw:
            self._write(b">")

    def wait_resets(self, n, timeout_s=20):
        """mpremote's `reset` does not wait for the board: the test does."""
        import time
        end = time.monotonic() + timeout_s
        while self.resets < n and time.monotonic() < end:
            time.sleep(0.02)
        return self.resets

    def close(self):
        self._stop = True
        if self.child is not None:
            self.child.kill()
            self.child.wait()
        for fd in (self._slave, self.master):
            try:
                os.close(fd)
            except OSError:
                pass

    def files(self):
        """Every file on the fake flash, as board paths."""
        return sorted("/" + p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
