"""Manifests by role: what each node role carries is main.py's import
closure plus what the role adds, and the committed per-role files
(firmware/package-<role>.json, manifest-<role>.py) are what the generator
writes (regenerate: `pen board roles --write`)."""
import ast
import json
import re

import boardpath  # noqa: F401
import pytest

from pen.board import layout, roles
from pen.commands import board as B

FW = boardpath.ROOT / "firmware"
VALIDATOR = {"pen_protocol/ctb.py", "pen_protocol/check.py", "pen_protocol/ed25519.py", "pen_protocol/sha512.py",
             "pen_protocol/votation.py", "pen_protocol/records.py", "pen_protocol/sign.py"}


def test_committed_package_and_role_files_are_the_generated_ones():
    gen = roles.generated(FW)
    assert len(gen) == 1 + 2 * len(roles.ROLES)
    for path, text in gen.items():
        assert path.read_text() == text, "%s is stale: regenerate with: pen board roles --write" % path.name


def test_a_relay_carries_no_validator_link_or_ble():
    f = set(roles.files("relay"))
    assert not f & VALIDATOR
    assert "pen_node/service.py" not in f and "pen_protocol/link.py" not in f
    assert "aioble" not in roles.ROLES["relay"]["deps"]
    assert {"pen_node/mesh.py", "pen_node/journal.py", "pen_node/radio.py", "pen_protocol/frame.py"} <= f


def test_a_bridge_adds_the_link_and_a_store_node_the_validator_and_aioble():
    relay, bridge, store = (set(roles.files(r)) for r in ("relay", "bridge", "store-node"))
    assert relay < bridge < store
    # the link, and pairing (on a bridge only if its /pen.json asks; the pure-Python verifier comes with
    # pen_protocol.sign, which linkauth names key ids with: flash, never loaded by pairing)
    assert bridge - relay == {"pen_node/service.py", "pen_protocol/link.py", "pen_protocol/cbor.py",
                              "pen_node/linkconf.py", "pen_node/pairing.py", "pen_protocol/linkauth.py",
                              "pen_protocol/sign.py", "pen_protocol/ed25519.py", "pen_protocol/sha512.py"}
    signing = {"pen_protocol/sign.py", "pen_protocol/ed25519.py", "pen_protocol/sha512.py"}
    assert VALIDATOR <= store and not (VALIDATOR - signing) & bridge
    assert roles.ROLES["store-node"]["deps"][-1] == "aioble"


def test_package_files_never_put_main_py_under_lib():
    for role in roles.ROLES:
        pkg = json.loads((FW / ("package-%s.json" % role)).read_text())
        assert all(d.startswith(("pen_node/", "pen_protocol/")) for d, s in pkg["urls"])
        for d, s in pkg["urls"]:
            assert (FW / s).resolve() == roles.source(d)


def test_an_optional_import_is_followed_only_when_the_role_names_it(tmp_path):
    entry = tmp_path / "main.py"
    entry.write_text("from pen_node.mesh import MeshNode\n"
                     "try:\n    from pen_node.service import LinkService\nexcept ImportError:\n    pass\n")
    assert "pen_node/service.py" not in roles.closure(entry)
    assert "pen_node/service.py" in roles.closure(entry, ("pen_node.service",))


def test_imports_inside_functions_and_relative_imports_count(tmp_path):
    entry = tmp_path / "main.py"
    entry.write_text("def f():\n    from pen_protocol import votation\n")
    got = roles.closure(entry)
    # votation -> ctb, records -> sign (-> ed25519 in its ImportError handler) -> sha512, cbor, ids
    assert {"pen_protocol/votation.py", "pen_protocol/ctb.py", "pen_protocol/ed25519.py",
            "pen_protocol/sha512.py", "pen_protocol/__init__.py"} <= set(got)
    assert not any(f.startswith("pen_node/") for f in got)


def test_freeze_manifests_name_the_same_files_and_drivers(tmp_path):
    for role in roles.ROLES:
        calls = []
        env = {n: (lambda n: lambda *a, **kw: calls.append((n, a, kw)))(n)
               for n in ("include", "require", "package", "module")}
        exec((FW / ("manifest-%s.py" % role)).read_text(), env)
        assert [c[1][0] for c in calls if c[0] == "require"] == list(roles.ROLES[role]["deps"])
        frozen = {c[1][0] + "/" + f for c in calls if c[0] == "package" for f in c[2]["files"]}
        assert frozen == set(roles.files(role))
        assert [c[1][0] for c in calls if c[0] == "module"] == ["main.py"]


def test_sizes_grow_with_the_role_and_compiling_shrinks_them(capsys):
    sizes = {r: roles.sizes(r) for r in roles.ROLES}
    assert sizes["relay"][0] < sizes["bridge"][0] < sizes["store-node"][0]
    for py, mpy in sizes.values():
        assert 0 < mpy < py / 2
    assert B.cmd_roles(type("A", (), {"json": True, "write": False})()) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["role"], r["py_bytes"], r["mpy_bytes"]) for r in rows] == [(r, *sizes[r]) for r in roles.ROLES]


def test_roles_find_main_in_the_firmware_folder():
    assert layout.firmware_dir() == FW
    tree = ast.parse((FW / "main.py").read_text())
    assert any(isinstance(n, ast.ImportFrom) and n.module == "pen_node.mesh" for n in ast.walk(tree))


def test_deploy_doc_names_every_pen_json_key_and_role():
    from pen.board.provision import CONFIG_KEYS
    doc = (boardpath.ROOT / "docs" / "deploy.md").read_text()
    table = doc[doc.index("### `/pen.json`, every key"):doc.index("### Getting the REPL back")]
    assert set(re.findall(r"^\| `(\w+)` \|", table, re.M)) == set(CONFIG_KEYS)
    for role in roles.ROLES:
        assert "| `%s` |" % role in doc


def test_the_node_reads_no_pen_json_key_the_doc_does_not_name():
    from pen.board.provision import CONFIG_KEYS
    read = set()
    # main.py reads /pen.json into cfg and hands it to boardsleep.board_power (radio.py's cfg is lora_cfg)
    for f in (FW / "main.py", FW / "pen_node" / "boardsleep.py"):
        src = f.read_text() if f.exists() else ""
        read |= set(re.findall(r'cfg\.get\("(\w+)"', src)) | set(re.findall(r'cfg\["(\w+)"\]', src))
    assert {"board", "preset", "bridge"} <= read
    assert read <= set(CONFIG_KEYS), read - set(CONFIG_KEYS)
