"""`pen board provision`: from a board on a USB port to a Pen node.

The plan is a list of steps, each a command line (esptool, mpremote) or a
local action, printed before it runs; `--dry-run` prints the same plan and
runs nothing. The board ends up laid out as main.py expects:

    /main.py                     the node (main.py runs at boot; never under /lib)
    /pen.json                    the node's configuration (docs/deploy.md, CONFIG_KEYS)
    /hardware/boards/<id>.json   the board's profile (pins, radio, rails)
    /hardware/power.json         power figures (light sleep, RX duty cycle)
    /lib/pen_node/..., /lib/pen_protocol/...   the role's modules (roles.py)
    /lib/lora/..., /lib/aioble/...             micropython-lib drivers (mip deps)

Two mip installs place them: the role's libraries with their dependencies
under /lib, then the board's root files with target "" (so "main.py" lands
at "/main.py"). Nothing here reads a clock or picks randomness."""
import json
import shlex
import shutil
import sys
from pathlib import Path

from pen.board import layout, roles

FLASH_BAUD = 460800  # esptool's usual fast rate; the CP2102 on a Heltec V3 carries it
# where a MicroPython .bin starts: the ESP32's second-stage bootloader sits at
# 0x1000, the S3's at 0x0 (MicroPython's download page says the same)
FLASH_OFFSET = {"esp32": "0x1000", "esp32s3": "0x0"}
REGION_PRESET = {"eu868": "eu868-sf9", "us915": "us915-sf9"}
MPREMOTE = [sys.executable, "-m", "mpremote"]
ESPTOOL = [sys.executable, "-m", "esptool"]
MAX_ADDR = 0xFFFD  # 0xFFFE and 0xFFFF are the mesh's group addresses

# every key main.py reads from /pen.json, and what it means (docs/deploy.md)
CONFIG_KEYS = {
    "board": "board profile id: /hardware/boards/<board>.json",
    "preset": "radio preset (pen_protocol.airtime.PRESETS): frequency, SF, bandwidth, the sub-band's law",
    "bridge": "true on a bridge node: the mesh routes payments to it and its PC uploads them",
    "role": "relay, bridge or store-node: what was installed (pen board roles)",
    "addr": "mesh address 1..65533 (optional: else the low 16 bits of the chip's unique id)",
    "village": "the village's name, as its village file gives it",
    "ctb_keys": "public keys (hex) of the CTB nodes whose ACCOUNTED receipts the village trusts",
    "net_key": "the village network secret (hex): every frame on air is sealed with a tag from it",
    # the link (pen_node.linkconf, docs/link.md); provisioning leaves them at their defaults
    "pair": "the link needs pairing (default: yes on a store-node)",
    "pair_file": "where the pairing state lives (default /pen.pair)",
    "ble": "the name a store-node advertises over BLE (default pen-<addr> when aioble is there; \"\" for none)",
    # light sleep (pen_node.boardsleep, docs/power.md); provisioning leaves them at their defaults
    "sleep": "light-sleep between events (default: yes, except on a bridge, which its PC powers)",
    "link_wake_pin": "an RTC GPIO wired to the link's RX line, so a node with a link may sleep",
    "leaf": "this node relays for no one: it listens in RX duty cycle (SX126x)",
    "relay_rx_duty": "a relay in RX duty cycle: refused at every preset (its preamble leaves the SX126x no sleep)",
    "sleepy": "addresses of leaves, sent to with the long preamble",
    "tx_power_control": "unicast frames at the lowest power with a margin over the link (off by default)",
}


REPL_GRACE_MS = 3000  # main.py's: after a reset, how long Ctrl-C still stops the node
BOOT_WAIT_S = 1.5  # from releasing EN to main.py sleeping in that grace (ROM boot + imports)


def cannot_open(port, e):
    """pyserial's error as a sentence (its text repeats the path and errno)."""
    import os
    why = os.strerror(e.errno) if isinstance(getattr(e, "errno", None), int) else str(e)
    return "cannot open %s: %s" % (port, why.lower())


def reset_board(port, sleep=None, open_serial=None):
    """Pulse EN through RTS, as esptool's hard reset does on boards with a
    USB-UART bridge (Heltec V3's CP2102): a running node takes the REPL's UART
    (kbd_intr(-1)), so mpremote's Ctrl-C only works in the grace after a reset.
    A port without modem lines (a pty, some USB-CDC) is told, not fatal."""
    import time
    import serial
    sleep = sleep or time.sleep
    try:
        s = (open_serial or serial.Serial)(port, 115200)
    except (serial.SerialException, OSError) as e:
        raise RuntimeError(cannot_open(port, e))
    try:
        s.dtr = False  # IO0 high: boot the firmware, not the ROM loader
        s.rts = True  # EN low: reset
        sleep(0.1)
        s.rts = False
    except OSError:
        print("      %s has no reset line: if a node runs on it, press the board's RST button now" % port)
        return False
    finally:
        s.close()
    sleep(BOOT_WAIT_S)
    return True


class ProvisionError(Exception):
    """Bad input, found before anything touches the board."""


class Step:
    def __init__(self, title, argv=None, action=None):
        self.title, self.argv, self.action = title, argv, action

    def line(self):
        return shlex.join(str(a) for a in self.argv) if self.argv else None


def board_profile(name):
    """heltec_v3 or heltec-v3 -> (id, profile dict)."""
    pid = name.replace("_", "-")
    path = layout.hardware_dir() / "boards" / (pid + ".json")
    if not path.is_file():
        known = sorted(p.stem for p in (layout.hardware_dir() / "boards").glob("*.json"))
        raise ProvisionError("unknown board %r; known boards: %s" % (name, ", ".join(known)))
    return pid, json.loads(path.read_text())


def preset_for(region, preset=None):
    from pen_protocol.airtime import PRESETS
    if region not in REGION_PRESET:
        raise ProvisionError("unknown region %r; known regions: %s" % (region, ", ".join(sorted(REGION_PRESET))))
    name = preset or REGION_PRESET[region]
    if name not in PRESETS:
        raise ProvisionError("unknown radio preset %r; known presets: %s" % (name, ", ".join(sorted(PRESETS))))
    if not name.startswith(region + "-"):
        raise ProvisionError("preset %s is not a %s preset: that radio plan is not legal there" % (name, region))
    return name


def read_village(path):
    """A village file: JSON {"village": name, "ctb_keys": [hex public key...]}
    (`pen board village` writes one). Only public keys ever go on a board;
    the one secret a node holds is the village network secret (read_net_key),
    which seals frames on air and signs nothing."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ProvisionError("cannot read the village file %s: %s" % (path, e.strerror))
    stripped = text.strip()
    if len(stripped) == 64 and all(c in "0123456789abcdefABCDEF" for c in stripped):
        raise ProvisionError("%s looks like a secret key file; a village file is JSON made by "
                             "`pen board village` (a board must never hold a secret key)" % path)
    try:
        v = json.loads(text)
    except ValueError:
        raise ProvisionError("%s is not a village file (JSON made by `pen board village`)" % path)
    if not (isinstance(v, dict) and isinstance(v.get("village"), str) and v["village"]
            and isinstance(v.get("ctb_keys"), list) and v["ctb_keys"]):
        raise ProvisionError("%s is not a village file: it needs a \"village\" name and a list of \"ctb_keys\"" % path)
    for k in v["ctb_keys"]:
        if not (isinstance(k, str) and len(k) == 64 and _is_hex(k)):
            raise ProvisionError("%s: %r is not a public key (64 hex digits)" % (path, k))
    return {"village": v["village"], "ctb_keys": [k.lower() for k in v["ctb_keys"]]}


NET_KEY_SUFFIX = ".netkey"  # beside the village file: `pen board village` writes both
NET_KEY_MIN_HEX = 32  # 16 bytes, as main.py's net_secret requires


def net_key_path(village_file):
    return Path(village_file).with_suffix(NET_KEY_SUFFIX)


def read_net_key(path):
    """The village network secret, hex (`pen board village` writes it beside
    the village file). Every node of the village holds it: without it a node
    would not start (main.net_secret), with another it hears nobody."""
    try:
        text = Path(path).read_text().strip()
    except OSError as e:
        raise ProvisionError("cannot read the village network secret %s: %s (`pen board village` writes it "
                             "beside the village file)" % (path, e.strerror))
    if len(text) < NET_KEY_MIN_HEX or len(text) % 2 or not _is_hex(text):
        raise ProvisionError("%s is not a village network secret: %d or more hex digits" % (path, NET_KEY_MIN_HEX))
    return text.lower()


def _is_hex(s):
    try:
        bytes.fromhex(s)
        return True
    except ValueError:
        return False


def node_config(board_id, preset, role, village, net_key, addr=None):
    cfg = {"board": board_id, "preset": preset, "bridge": role == "bridge", "role": role,
           "village": village["village"], "ctb_keys": village["ctb_keys"], "net_key": net_key}
    if addr is not None:
        if not 1 <= addr <= MAX_ADDR:
            raise ProvisionError("mesh address %d is out of range: use 1..%d" % (addr, MAX_ADDR))
        cfg["addr"] = addr
    assert set(cfg) <= set(CONFIG_KEYS)
    return cfg


def stage(stage_dir, role, board_id, cfg, compiled=True):
    """Write the two mip packages (lib/ and root/) under stage_dir."""
    stage_dir = Path(stage_dir)
    lib, root = stage_dir / "lib", stage_dir / "root"
    urls = []
    for dest in roles.files(role):
        src = roles.source(dest)
        if compiled:
            from pen.board import mpy
            mpy.compile_file(src, lib / (dest[:-3] + ".mpy"), name=dest)
            dest = dest[:-3] + ".mpy"
        else:
            (lib / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, lib / dest)
        urls.append([dest, dest])
    pkg = roles.package_json(role)
    pkg["urls"] = urls
    (lib / "package.json").write_text(roles.dumps(pkg))
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(layout.firmware_dir() / roles.ENTRY, root / "main.py")
    profile = "hardware/boards/%s.json" % board_id
    (root / profile).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(layout.hardware_dir() / "boards" / (board_id + ".json"), root / profile)
    (root / "pen.json").write_text(json.dumps(cfg, sort_keys=True) + "\n")
    shutil.copyfile(layout.hardware_dir() / "power.json", root / "hardware" / "power.json")
    rootpkg = {"urls": [["main.py", "main.py"], ["pen.json", "pen.json"], [profile, profile],
                        ["hardware/power.json", "hardware/power.json"]], "deps": [],
               "version": pkg["version"]}
    (root / "package.json").write_text(roles.dumps(rootpkg))


def plan(port, board, region, village_file, stage_dir, role="relay", image=None, preset=None, index=None,
         addr=None, compiled=True, net_key_file=None):
    """The steps, checked before any of them runs. The village network
    secret is read from net_key_file, by default the one beside the village
    file."""
    if role not in roles.ROLES:
        raise ProvisionError("unknown role %r; roles: %s" % (role, ", ".join(roles.ROLES)))
    board_id, profile = board_profile(board)
    preset = preset_for(region, preset)
    village = read_village(village_file)
    net_key = read_net_key(net_key_file or net_key_path(village_file))
    cfg = node_config(board_id, preset, role, village, net_key, addr)
    chip = profile["mcu"]
    if chip not in FLASH_OFFSET:
        raise ProvisionError("no flash layout known for a %s" % chip)
    steps = []
    if image is not None:
        if not Path(image).is_file():
            raise ProvisionError("no MicroPython image at %s" % image)
        esp = ESPTOOL + ["--chip", chip, "--port", port]
        steps.append(Step("erase the flash", esp + ["erase-flash"]))
        steps.append(Step("write MicroPython %s at %s" % (Path(image).name, FLASH_OFFSET[chip]),
                          esp + ["--baud", str(FLASH_BAUD), "write-flash", FLASH_OFFSET[chip], str(image)]))
    stage_dir = Path(stage_dir)
    steps.append(Step("reset the board so a running node lets go of the serial line for %d s"
                      % (REPL_GRACE_MS // 1000), action=lambda: reset_board(port)))
    steps.append(Step("stage the %s role, %s's profile and /pen.json in %s" % (role, board_id, stage_dir),
                      action=lambda: stage(stage_dir, role, board_id, cfg, compiled)))
    steps.append(Step("remove an earlier install of the node (%s)" % ", ".join(OLD_DIRS),
                      MPREMOTE + ["connect", port, "exec", CLEAN_CODE]))
    mip = MPREMOTE + ["connect", port, "mip", "install"] + (["--index", str(index)] if index else [])
    steps.append(Step("install the %s modules and their drivers under /lib" % role,
                      mip + ["--target", "/lib", str(stage_dir / "lib" / "package.json")]))
    steps.append(Step("write /main.py, /pen.json, /hardware/boards/%s.json and /hardware/power.json" % board_id,
                      mip + ["--target", "", str(stage_dir / "root" / "package.json")]))
    steps.append(Step("check the node imports on the board",
                      MPREMOTE + ["connect", port, "exec", CHECK_CODE]))
    steps.append(Step("reset the board: the node starts", MPREMOTE + ["connect", port, "reset"]))
    return steps, cfg


# run on the board after installing: main.py imports every module of the role
# (the radio driver only loads when the node starts) and /pen.json parses
CHECK_CODE = ('import json, main; c = json.load(open(main.CONFIG)); json.load(open(main.BOARDS % c["board"])); '
              'print("node ready:", c["role"], c["board"], c["preset"])')

# a board provisioned before (another role, or .py where .mpy now goes: MicroPython
# imports x.py before x.mpy) must not keep modules this role does not carry
OLD_DIRS = ("/lib/pen_node", "/lib/pen_protocol")
CLEAN_CODE = """import os
def rm(p):
    try:
        os.stat(p)
    except OSError:
        return
    for e in os.ilistdir(p):
        q = p + "/" + e[0]
        rm(q) if e[1] == 0x4000 else os.remove(q)
    os.rmdir(p)
for p in %r:
    rm(p)""" % (OLD_DIRS,)
