"""What each kind of node carries, found from main.py's imports.

A role is main.py's import closure plus the modules the role adds:

    relay       the mesh alone: routing, custody journal, duty-cycle law,
                radio driver (main.py runs without the link service)
    bridge      + the link service, so a bridge PC reaches the mesh over USB
                (and pairing, pen_node.linkconf, if its /pen.json asks)
    store-node  + the link service with pairing (on by default), the CTB validator (offline check and
                votation recount with the pure-Python Ed25519: the 128 KB
                heap part) and aioble, for store phones over BLE

The closure is read from the sources (ast), so a module added to the node is
carried by every role that imports it, and one no role imports is carried by
none. An import inside `try: ... except ImportError` is optional (main.py's
link service): it is followed only when the role names it. Imports inside
functions count (they run on the board too)."""
import ast
import json
from pathlib import Path

from pen.board import layout, mpy

PACKAGES = ("pen_node", "pen_protocol")
RADIO_DEPS = ("lora-sx126x", "lora-sx127x", "lora-async")
ROLES = {
    "relay": {"adds": (), "deps": RADIO_DEPS},
    # pen_node.linkconf: pairing (pen_node.pairing, pen_protocol.linkauth), on a bridge if /pen.json asks
    "bridge": {"adds": ("pen_node.service", "pen_node.linkconf"), "deps": RADIO_DEPS},
    # pen_node.ble (the link over BLE, aioble) is carried once it exists in the tree
    "store-node": {"adds": ("pen_node.service", "pen_node.linkconf", "pen_node.ble", "pen_protocol.check",
                            "pen_protocol.votation"),
                   "deps": RADIO_DEPS + ("aioble",)},
}
ENTRY = "main.py"


def module_file(name):
    """pen_node.mesh -> its .py; a package name -> its __init__.py; None if not ours."""
    parts = name.split(".")
    if parts[0] not in PACKAGES:
        return None
    base = layout.package_dir(parts[0])
    if len(parts) == 1:
        return base / "__init__.py"
    f = base.joinpath(*parts[1:]).with_suffix(".py")
    return f if f.is_file() else None


def _catches_import_error(handler):
    t = handler.type
    names = [e.id for e in (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(e, ast.Name)]
    return t is None or "ImportError" in names or "Exception" in names


def _imports(tree, package):
    """[(module name, optional)] named by a module of `package` (None: a script)."""
    out = []

    def visit(node, optional):
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            for child in node.body:
                visit(child, True)
            for child in node.handlers + node.orelse + node.finalbody:
                visit(child, optional)
            return
        if isinstance(node, ast.Import):
            out.extend((a.name, optional) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package if node.level else node.module
            if node.level and node.module:
                base = package + "." + node.module
            for a in node.names:  # `from pkg import mod` names a module when mod.py exists
                sub = "%s.%s" % (base, a.name)
                out.append((sub if module_file(sub) else base, optional))
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(tree, False)
    return out


def closure(entry_file, adds=()):
    """Source files (pen_node/..., pen_protocol/...) entry_file needs, plus adds."""
    seen = {}
    todo = [(m, False) for m in adds]
    todo += _imports(ast.parse(Path(entry_file).read_text()), None)
    while todo:
        name, optional = todo.pop()
        if optional and name not in adds:
            continue
        f = module_file(name)
        if f is None or name in seen:
            continue
        seen[name] = f
        pkg = name.split(".")[0]
        todo.append((pkg, False))  # its package's __init__
        package = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        todo += _imports(ast.parse(f.read_text()), package)
    return sorted(_dest(n, f) for n, f in seen.items())


def _dest(name, f):
    pkg = name.split(".")[0]
    return pkg + "/" + f.relative_to(layout.package_dir(pkg)).as_posix()


def source(dest):
    """The file on this machine for a destination like pen_node/mesh.py."""
    pkg, rel = dest.split("/", 1)
    return layout.package_dir(pkg) / rel


def files(role):
    r = ROLES[role]
    return closure(layout.firmware_dir() / ENTRY, r["adds"])


def package_json(role, base=None):
    """The role's mip package: libraries only (mip installs under /lib, where
    main.py would never run: provisioning copies main.py to /). URLs are
    relative to base (firmware/ in a checkout) or are the destination paths
    (a staged copy)."""
    def src(dest):
        if base is None:
            return dest
        return Path(_relpath(source(dest), base)).as_posix()
    from pen_node import VERSION
    return {"urls": [[d, src(d)] for d in files(role)],
            "deps": [[d, "latest"] for d in ROLES[role]["deps"]],
            "version": VERSION}


def _relpath(path, base):
    import os
    return os.path.relpath(path, base)


def dumps(pkg):
    """package.json as the repository writes it: one [dest, src] pair a line."""
    def rows(pairs):
        return ",\n".join("    " + json.dumps(p) for p in pairs)
    return '{\n  "urls": [\n%s\n  ],\n  "deps": [\n%s\n  ],\n  "version": %s\n}\n' % (
        rows(pkg["urls"]), rows(pkg["deps"]), json.dumps(pkg["version"]))


def sizes(role, out=None):
    """(bytes of .py, bytes of .mpy) the role puts on the board's flash,
    main.py included; the .mpy compiled with mpy-cross."""
    out = Path(out or layout.cache_dir() / "mpy-roles")
    py = mpy_bytes = 0
    pairs = [(source(d), d) for d in files(role)] + [(layout.firmware_dir() / ENTRY, ENTRY)]
    exe = mpy.mpy_cross()
    for src, dest in pairs:
        py += src.stat().st_size
        mpy_bytes += mpy.compile_file(src, out / Path(dest).with_suffix(".mpy"), exe, dest).stat().st_size
    return py, mpy_bytes


def manifest_py(role):
    """The role's freeze manifest (a firmware image with the node in flash)."""
    by_pkg = {}
    for d in files(role):
        pkg, rel = d.split("/", 1)
        by_pkg.setdefault(pkg, []).append(rel)
    lines = ['# Generated by `pen board roles --write` from pen/board/roles.py: the %s role.' % role,
             '# Freeze with: make -C ports/esp32 BOARD=ESP32_GENERIC_S3 FROZEN_MANIFEST=$PWD/manifest-%s.py' % role,
             'include("$(PORT_DIR)/boards/manifest.py")']
    lines += ['require("%s")' % d for d in ROLES[role]["deps"]]
    for pkg in PACKAGES:
        base = ', base_path="../protocol"' if pkg == "pen_protocol" else ""
        lines.append('package("%s", files=%r%s)' % (pkg, by_pkg.get(pkg, []), base))
    lines.append('module("%s")' % ENTRY)
    return "\n".join(lines) + "\n"


def every_file():
    """Every module of both packages: firmware/package.json, the freeze set of
    firmware/manifest.py (a board that may take any role)."""
    out = []
    for pkg in PACKAGES:
        base = layout.package_dir(pkg)
        out += [pkg + "/" + f.relative_to(base).as_posix() for f in base.rglob("*.py")]
    return sorted(out)


def generated(fw_dir):
    """{path: text} of package.json and every per-role file under firmware/."""
    from pen_node import VERSION
    every = {"urls": [[d, Path(_relpath(source(d), fw_dir)).as_posix()] for d in every_file()],
             "deps": [[d, "latest"] for d in ROLES["store-node"]["deps"]], "version": VERSION}
    out = {Path(fw_dir) / "package.json": dumps(every)}
    for role in ROLES:
        out[Path(fw_dir) / ("package-%s.json" % role)] = dumps(package_json(role, fw_dir))
        out[Path(fw_dir) / ("manifest-%s.py" % role)] = manifest_py(role)
    return out
