"""Issue 14 item 5: no import cycle between the node's modules, nor between
the node and the bridge; the peer contract and HTTP constants live in the
neutral pen.peering, which imports neither. Every import counts, including
those inside functions."""
import ast
from pathlib import Path

HOST = Path(__file__).resolve().parents[2] / "host"


def imports(module):
    """Every pen.* module a module imports, anywhere in its body."""
    path = HOST / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = HOST / module.replace(".", "/") / "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("pen.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pen"):
            out.add(node.module)
            out |= {node.module + "." + a.name for a in node.names
                    if (HOST / (node.module + "." + a.name).replace(".", "/")).with_suffix(".py").exists()}
    return out


def package_modules(pkg):
    return ["%s.%s" % (pkg, p.stem) for p in (HOST / pkg.replace(".", "/")).glob("*.py") if p.stem != "__init__"]


def test_the_node_imports_nothing_from_the_bridge():
    for m in package_modules("pen.node"):
        assert not {i for i in imports(m) if i.startswith("pen.bridge")}, m


def test_the_peer_contract_module_imports_neither_side():
    assert not {i for i in imports("pen.peering") if i.startswith(("pen.node", "pen.bridge"))}


def test_no_cycle_among_the_node_and_bridge_modules():
    mods = package_modules("pen.node") + package_modules("pen.bridge") + ["pen.peering"]
    graph = {m: {i for i in imports(m) if i in mods} for m in mods}

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen
    cycles = [m for m in mods if m in reach(m)]
    assert cycles == []
