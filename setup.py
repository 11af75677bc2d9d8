"""Which packages the wheel holds (pyproject.toml has the rest). Three source
trees become importable packages: host/pen (pen), protocol/pen_protocol and
firmware/pen_node, found here so a new subpackage needs no edit. The board's
top-level scripts (main.py, medium_node.py, ...) and hardware/ profiles ride
along as data of pen.firmware and pen.hardware (pen.board.layout finds them),
so an installed `pen` can run the simulator and provision a board."""
from setuptools import find_packages, setup

packages = (find_packages("host") + find_packages("protocol") + find_packages("firmware")
            + ["pen.firmware", "pen.hardware", "pen.hardware.boards"])
setup(packages=packages)
