"""atheris over fuzz_node.one_input, with coverage instrumentation of the
node and protocol code only (the harness's own doc says how to run it)."""
import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
with atheris.instrument_imports(include=["pen_protocol", "pen_node", "fuzz_node"]):
    import fuzz_node

if __name__ == "__main__":
    atheris.Setup(sys.argv, fuzz_node.one_input)
    atheris.Fuzz()
