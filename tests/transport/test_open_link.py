"""open_link: every link string opens its transport or says what a link
string looks like; nothing is opened by a wrong one."""
import pytest

from pen.transport import LinkSpecError, open_link
from pen.transport.meshtastic import node_num, open_meshtastic


@pytest.mark.parametrize("spec,words", [
    ("/dev/ttyUSB0", "a link is serial:PATH"),
    ("radio:/dev/ttyUSB0", "unknown link kind 'radio'"),
    ("tcp:localhost", "tcp link is tcp:HOST:PORT"),
    ("tcp:localhost:http", "tcp link is tcp:HOST:PORT"),
])
def test_a_wrong_link_string_says_what_one_looks_like(spec, words):
    with pytest.raises(LinkSpecError) as e:
        open_link(spec)
    assert words in str(e.value)


def test_meshtastic_needs_the_serving_node_and_a_radio_kind():
    with pytest.raises(ValueError, match="say which node serves Pen"):
        open_meshtastic("tcp:127.0.0.1")
    with pytest.raises(ValueError, match="serial:PATH or tcp:HOST"):
        open_meshtastic("usb:x@!00000001")
    assert node_num("!0b0b0b02") == 0x0B0B0B02 and node_num("42") == 42


def test_a_closed_tcp_port_is_an_os_error_naming_it():
    with pytest.raises(OSError, match="cannot connect to 127.0.0.1:1"):
        open_link("tcp:127.0.0.1:1")


def test_bridge_pair_without_meshtastic_is_refused(capsys):
    from pen.cli import main
    assert main(["bridge", "--serial", "/dev/null", "--peer", "http://127.0.0.1:1", "--pair", "x.pair"]) == 1
    assert "--pair and --new-code are for stores over --meshtastic" in capsys.readouterr().err
