"""Pen's one wire protocol: sans-IO, runs unchanged on MicroPython and CPython.

Modules, one job each:
  cbor      deterministic CBOR codec (RFC 8949 section 4.2.1 subset)
  ids       product ids / account numbers (digit strings, packed BCD on the wire)
  records   every signed record of the seed, with its exact bytes
  sign      domain separation and the one verify hook
  ctb       the one validator of CTB and votation transitions
  frame     mesh frame header, fragments and link acks
  airtime   LoRa time on air (Semtech formula)
"""

VERSION = 1
