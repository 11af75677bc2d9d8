"""Pen host package: keys, councils, votations, tokens, the CTB, sync, bridge."""
