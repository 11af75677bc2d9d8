# The part of MicroPython's bluetooth module pen_node.ble uses: UUID.
class UUID:
    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, UUID) and self.value == other.value

    def __hash__(self):
        return hash(self.value)
