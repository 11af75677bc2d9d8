"""`pen register` as a shopkeeper starts it: refusals before anything is
served, then the page and every asset from the local server (nothing from
the internet), with the link down."""
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pen.cli import main

STATIC = Path(__file__).resolve().parents[2] / "host" / "pen" / "register" / "static"
CTB = "11" * 32


def _pen(tmp_path, capsys, *args):
    rc = main(["--home", str(tmp_path)] + list(args))
    return rc, capsys.readouterr().err


def test_refusals(tmp_path, capsys):
    rc, err = _pen(tmp_path, capsys, "register", "--link", "tcp:127.0.0.1:9", "--account", "501000000001")
    assert rc == 1 and "no CTB node key pinned" in err
    assert main(["--home", str(tmp_path), "store", "trust", CTB]) == 0
    rc, err = _pen(tmp_path, capsys, "register", "--link", "tcp:127.0.0.1:9", "--account", "5")
    assert rc == 1 and "--account" in err
    rc, err = _pen(tmp_path, capsys, "register", "--link", "tcp:127.0.0.1:9", "--account", "501000000001",
                   "--listen", "8480")
    assert rc == 1 and "--listen is HOST:PORT" in err
    main(["--home", str(tmp_path), "keys", "new", "shop"])
    capsys.readouterr()
    rc, err = _pen(tmp_path, capsys, "register", "--link", "tcp:127.0.0.1:9", "--account", "501000000001",
                   "--shop", "shop")
    assert rc == 1 and "--shop and --exchange go together" in err


def test_nothing_from_the_internet():
    for f in STATIC.glob("*.*"):
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), f
        assert "fetch(\"http" not in text, f


def test_serves_the_page_with_the_link_down(tmp_path):
    assert main(["--home", str(tmp_path), "store", "trust", CTB]) == 0
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen([sys.executable, "-c", "import sys; from pen.cli import main; sys.exit(main())",
                          "--home", str(tmp_path), "register", "--link", "tcp:127.0.0.1:9",
                          "--account", "501000000001", "--listen", "127.0.0.1:%d" % port],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = "http://127.0.0.1:%d" % port
        for _ in range(100):
            try:
                page = urllib.request.urlopen(base + "/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError(p.stderr.read() if p.poll() is not None else "not serving")
        for src in re.findall(r"(?:src|href)=\"(/[^\"]+)\"", page):
            assert urllib.request.urlopen(base + src, timeout=5).status == 200
        day = json.loads(urllib.request.urlopen(base + "/day", timeout=5).read())
        assert day["link"]["paired"] is False and day["queue"] == 0
        # a form post from another web page (no preflight): refused before it is read
        req = urllib.request.Request(base + "/change", data=b'{"value": 10, "price": 1, "give": true}',
                                     headers={"Content-Type": "text/plain"})
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError("a text/plain post was taken")
        except urllib.error.HTTPError as e:
            assert e.code == 415
        time.sleep(1.5)
        day = json.loads(urllib.request.urlopen(base + "/day", timeout=5).read())
        assert day["link"]["error"]  # the worker says why the link is down (connection refused)
    finally:
        p.terminate()
        p.wait(10)
