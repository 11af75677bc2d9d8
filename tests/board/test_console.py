"""`pen board console`: a node's serial output, where link frames and plain
text share one stream, shown as lines a person reads; corrupt frames are
shown as text, never decoded as something they are not."""
import os
import pty
import threading
import tty

import boardpath  # noqa: F401

from pen import cli
from pen.board.console import Console
from pen_protocol import link as L


def shown(data):
    lines = []
    c = Console(lines.append)
    c.feed(data)
    c.flush()
    return lines


def test_text_and_frames_are_told_apart():
    data = (b"MPY: soft reboot\r\n" + L.encode(L.EV_LOG, 0, b"custody 3/48")
            + L.encode(L.EV_DELIVERED, 9, b"\x83" * 40) + L.encode(L.SPENT + L.RESPONSE, 4, b"\x83\xf4\x00\xf4")
            + L.error(5, L.E_CRC) + b"Traceback (most recent call last):\r\n")
    assert shown(data) == ["MPY: soft reboot", "[node] custody 3/48", "[link] delivered a record #9 (40 bytes)",
                           "[link] answer to spent? #4 (4 bytes)", "[link] error #5: crc",
                           "Traceback (most recent call last):"]


def test_a_corrupted_frame_is_not_shown_as_a_frame():
    bad = bytearray(L.encode(L.EV_LOG, 0, b"hello"))
    bad[3] ^= 0x20
    assert not any(line.startswith(("[node]", "[link]")) for line in shown(bytes(bad)))


def test_a_line_with_no_end_is_shown_in_pieces():
    assert len(shown(b"x" * 10000)) == 3


def test_console_command_reads_the_port(capsys, monkeypatch):
    import serial
    master, slave = pty.openpty()
    tty.setraw(slave)
    opened = threading.Event()  # pyserial drops what arrived before open(): the board speaks after it
    real_open = serial.Serial.open
    monkeypatch.setattr(serial.Serial, "open", lambda self: (real_open(self), opened.set()))
    threading.Thread(target=lambda: opened.wait(10) and os.write(
        master, b"pen node 0.1.0\r\n" + L.encode(L.EV_LOG, 0, b"up")), daemon=True).start()
    try:
        assert cli.main(["board", "console", "--port", os.ttyname(slave), "--seconds", "1"]) == 0
    finally:
        os.close(master)
        os.close(slave)
    assert capsys.readouterr().out.splitlines() == ["pen node 0.1.0", "[node] up"]


def test_console_on_a_missing_port_is_one_sentence(capsys, tmp_path):
    assert cli.main(["board", "console", "--port", str(tmp_path / "ttyUSB7"), "--seconds", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pen: error: cannot open %s: " % (tmp_path / "ttyUSB7")) and "Errno" not in err


def test_watching_does_not_reset_the_board(monkeypatch, capsys):
    import serial
    seen = {}

    class Port:
        def open(self):
            seen.update(dtr=self.dtr, rts=self.rts, port=self.port)

        def read(self, n):
            return b""

        def close(self):
            seen["closed"] = True

    monkeypatch.setattr(serial, "Serial", Port)
    assert cli.main(["board", "console", "--port", "/dev/ttyUSB0", "--seconds", "0"]) == 0
    assert seen == {"dtr": False, "rts": False, "port": "/dev/ttyUSB0", "closed": True}


def test_the_pairing_code_a_store_node_prints_at_boot_is_a_line_and_the_next_frame_arrives_whole(monkeypatch):
    # main.show_code writes on the USB serial before the link takes it; a host
    # already reading the link drops the text as one damaged frame (its 0x00)
    import io
    import sys
    import main
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, write_through=True))
    main.show_code("482913")
    wire = raw.getvalue() + L.encode(L.EV_RECEIPT, 1, b"x")
    assert shown(wire) == ["pairing code: 482913", "[link] got a receipt #1 (1 bytes)"]
    got = L.Decoder().feed(wire)
    assert isinstance(got[0], L.LinkError) and len(got) == 2
    assert (got[1].kind, got[1].seq, bytes(got[1].payload)) == (L.EV_RECEIPT, 1, b"x")
