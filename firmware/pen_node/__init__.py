"""Pen's MicroPython mesh node: sans-IO core (mesh, journal, duty, spent,
service) plus thin drivers (radio, main, unix_node). The same core runs on a
board, under the MicroPython unix port and inside the CPython simulator."""

VERSION = "0.1.0"
