#!/usr/bin/env python3
"""atheris over fuzz_node.one_input, with coverage instrumentation of the
node and protocol code only, not of the harness (its branches are not the
node's, and instrumenting them slows every execution); the harness's own
doc says how to run it."""
import os
import sys

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for p in ("protocol", "firmware", "tests/mpy", "tests/fuzz"):
    sys.path.insert(0, os.path.join(ROOT, p))

with atheris.instrument_imports(include=["pen_protocol", "pen_node"]):
    # everything one_input reaches in the node, imported (so instrumented) here first
    import pen_node.mesh  # noqa: F401
    import pen_node.service  # noqa: F401
    import pen_node.journal  # noqa: F401
    import pen_node.memstorage  # noqa: F401
    import pen_protocol.frame  # noqa: F401
    import pen_protocol.link  # noqa: F401
import fuzz_node  # noqa: E402

if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_node.one_input)
    atheris.Fuzz()
