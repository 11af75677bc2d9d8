"""Joining (keys import from a QR payload, a file or an image; several
memberships; no bad advice) and the credit book (sealed keys, PDF QRs read
back, pay at a store with a wrong then the right password)."""
import io
import json
import os
import stat

import pytest

from pen.economy import qr
from pen.keys import Keyring, SealError, parse_sealed, seal_seed, unseal_payload
from pen_protocol import ctb, sign

from .conftest import Pen, approve, ref_in

PW = "correct horse battery"


def test_qr_image_round_trip_and_import_as_contact(fed, tmp_path):
    fed("keys", "show", "ana", "--out", tmp_path / "ana.png")
    assert qr.decode_image(tmp_path / "ana.png") == ["pen:key:" + Keyring(fed.home).load("ana").public_key.hex()]
    other = Pen(tmp_path / "other", fed.capsys)
    out = other.out("keys", "import", tmp_path / "ana.png", "--name", "ana")
    assert out.startswith("imported contact ana (kid ")
    assert Keyring(other.home).public_key("ana") == Keyring(fed.home).load("ana").public_key
    # a contact cannot sign
    assert "is a contact" in other.fails("keys", "seal", "ana")


def test_import_from_a_usb_key_file_and_payload(fed, tmp_path):
    pk = Keyring(fed.home).load("ana").public_key
    f = tmp_path / "usb" / "ana.pen"
    f.parent.mkdir()
    f.write_text("pen:key:%s\n" % pk.hex())
    fed("keys", "import", f, "--name", "ana-usb")
    fed("keys", "import", "pen:key:" + pk.hex().upper(), "--name", "ana-qr")
    assert Keyring(fed.home).public_key("ana-usb") == Keyring(fed.home).public_key("ana-qr") == pk


@pytest.mark.parametrize("args,msg", [
    (["pen:key:1234", "--name", "x"], "bad pen:key: payload: expected 64 hex digits after it"),
    (["pen:key:" + "ab" * 32], "name the imported key: --name NAME (nothing imported)"),
    (["pen:key:" + "ab" * 32, "--name", "ana"], "a private key named 'ana' exists already"),
    (["pen:key:" + "ab" * 32, "--name", "../x"], "bad key name '../x'"),
    (["pen:hello", "--name", "x"], "not a Pen key or certificate: 'pen:hello' (nothing imported)"),
    (["no-such-file.png", "--name", "x"], "no-such-file.png is neither a pen: payload nor a readable file"),
    ([], "give a payload, a file or an image, or --camera (one of them)"),
])
def test_import_refusals(fed, args, msg):
    err = fed.fails("keys", "import", *args)
    assert msg in err, err
    assert not (Keyring(fed.home).dir / "x.pub").exists()


def test_image_without_qr_and_two_keys_refused(fed, tmp_path):
    from PIL import Image
    Image.new("RGB", (60, 60), "white").save(tmp_path / "blank.png")
    assert "no QR code found" in fed.fails("keys", "import", tmp_path / "blank.png", "--name", "x")
    (tmp_path / "two.txt").write_text("pen:key:%s\npen:key:%s\n" % ("ab" * 32, "cd" * 32))
    assert "2 keys in one source" in fed.fails("keys", "import", tmp_path / "two.txt", "--name", "x")


def test_payload_passed_as_user_assigns_to_that_key_and_no_bad_advice(fed):
    """It used to advise `pen keys new pen:key:<hex>`, which made a brand-new
    local key and assigned the token to it."""
    carlos = Keyring(fed.home + "-carlos").new("carlos")  # Carlos's own device
    payload = "pen:key:" + carlos.public_key.hex()
    prop = ref_in(fed.out("plan", "propose", "--key", "prod", "--year", "2027", "--line", "40171500:1:100"))
    approve(fed, "prod", prop)
    tok = ref_in(fed.out("token", "issue", "--key", "prod", "--value", "100", "--proposal", prop))
    fed("token", "assign", "--key", "prod", "--token", tok, "--user", payload)
    store = fed.store()
    t = store.get(b"T" + bytes.fromhex(tok.split(":")[0]) + int(tok.split(":")[1]).to_bytes(4, "big"))
    assert t[4] == carlos.public_key
    assert Keyring(fed.home).names() == ["ana", "cons", "fed", "mill", "prod"]
    err = fed.fails("token", "assign", "--key", "prod", "--token", tok, "--user", "carlos")
    assert "unknown key 'carlos'" in err and "keys new" not in err
    err = fed.fails("keys", "new", "pen:key:" + carlos.public_key.hex())
    assert "bad key name" in err
    err = fed.fails("council", "certify", "--key", "cons", "--member", "pen:key:zz")
    assert "keys new" not in err


def test_several_memberships_and_certificates_as_files_and_qr(fed, tmp_path):
    fed("council", "certify", "--key", "prod", "--member", "ana", "--role", "member")
    out = fed.out("keys", "memberships", "ana")
    assert "proposer   of Cons" in out and "member     of Prod" in out
    fed("keys", "cert", "ana", "--out", tmp_path / "ana-certs.txt")
    assert "a QR image holds one" in fed.fails("keys", "cert", "ana", "--out", tmp_path / "c.png")
    # the member's own device, holding a copy of the CTB without her certificates
    store = fed.store()
    from pen_protocol import records as R
    raws = [raw for _, raw in store.records() if R.parse(raw).type != R.MEMBER]
    store.close()
    member = Pen(tmp_path / "member", fed.capsys)
    member.store().submit(raws)
    out = member.out("keys", "import", tmp_path / "ana-certs.txt")
    assert out.count("certificate: ") == 2 and "stored" in out
    assert "already here" in member.out("keys", "import", tmp_path / "ana-certs.txt")
    fed("keys", "new", "bo")
    fed("council", "certify", "--key", "mill", "--member", "bo")
    fed("keys", "cert", "bo", "--out", tmp_path / "bo.png")
    assert qr.decode_image(tmp_path / "bo.png")[0].startswith("pen:rec:")
    assert "no member certificate" in fed.fails("keys", "cert", "fed", "--out", tmp_path / "x.txt")


def test_seal_replaces_the_plain_seed(fed):
    kr = Keyring(fed.home)
    seed = kr.load("ana").seed
    fed("keys", "seal", "ana", stdin=PW + "\n")
    assert not kr.path("ana").exists()
    text = kr.sealed_path("ana").read_text()
    assert seed.hex() not in text and seed.hex().upper() not in text
    assert stat.S_IMODE(os.stat(kr.sealed_path("ana")).st_mode) == 0o600
    with pytest.raises(KeyError, match="sealed"):
        kr.load("ana")
    with pytest.raises(SealError, match="wrong password"):
        kr.unseal("ana", "wrong")
    assert kr.unseal("ana", PW).seed == seed
    assert "is sealed" in fed.fails("keys", "seal", "ana", stdin=PW + "\n")
    assert "password may not be empty" in fed.fails("keys", "seal", "cons", stdin="\n")
    assert kr.path("cons").exists()
    # still a member key in every command that needs only its public half
    assert "proposer" in fed.out("keys", "memberships", "ana")


def test_sealed_payload_tampering_and_costs_refused():
    seed = bytes(range(32))
    p = seal_seed(seed, "pw", ops=1, mem=8192)
    assert unseal_payload(p, "pw").seed == seed
    raw = bytearray(__import__("base64").urlsafe_b64decode(p[11:] + "=" * (-len(p[11:]) % 4)))
    raw[-1] ^= 1
    bad = "pen:sealed:" + __import__("base64").urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(SealError, match="wrong password"):
        unseal_payload(bad, "pw")
    greedy = bytearray(raw)
    greedy[5:9] = (2 ** 31).to_bytes(4, "big")  # ask a store device for 2 GiB
    with pytest.raises(SealError, match="cost outside"):
        parse_sealed("pen:sealed:" + __import__("base64").urlsafe_b64encode(bytes(greedy)).decode())
    with pytest.raises(SealError, match="damaged"):
        parse_sealed("pen:sealed:AAAA")


def _book_world(fed, tmp_path):
    fed("keys", "new", "carlos")
    fed("council", "certify", "--key", "prod", "--member", "carlos")
    fed("keys", "seal", "carlos", stdin=PW + "\n")
    prop = ref_in(fed.out("plan", "propose", "--key", "prod", "--year", "2027", "--line", "80111600:10:30000"))
    approve(fed, "prod", prop)
    toks = []
    for v in (10000, 5000, 2000):
        t = ref_in(fed.out("token", "issue", "--key", "prod", "--value", v, "--proposal", prop))
        fed("token", "assign", "--key", "prod", "--token", t, "--user", "carlos")
        toks.append(t)
    out = fed.out("book", "print", "--user", "carlos", "--tokens", *toks, "--out", tmp_path / "book.pdf")
    assert out.endswith("3 tokens, 17000 credits -> %s\n" % (tmp_path / "book.pdf"))
    return toks


def _pdf_qrs(path):
    from pypdf import PdfReader
    texts = []
    for page in PdfReader(str(path)).pages:
        for img in page.images:
            texts += qr.decode_image(img.image)
    return texts


def test_credit_book_pdf_reads_back_and_pays_with_the_password(fed, tmp_path):
    toks = _book_world(fed, tmp_path)
    texts = _pdf_qrs(tmp_path / "book.pdf")
    assert len(texts) == 4 and texts[0].startswith("pen:sealed:")
    assert texts[0] == Keyring(fed.home).sealed_payload("carlos")
    refs = [qr.parse_token_payload(t) for t in texts[1:]]
    assert [(r.hex(), v) for r, v in refs] == [
        (bytes.fromhex(t.split(":")[0]).hex() + int(t.split(":")[1]).to_bytes(4, "big").hex(), v)
        for t, v in zip(toks, (10000, 5000, 2000))]
    # the store device: the book's key QR as an image, the token's QR payload
    qr.save_qr(texts[0], tmp_path / "key.png", scale=4)
    before = fed.count()
    err = fed.fails("book", "pay", "--book", tmp_path / "key.png", "--token", texts[1], "--product", "50180000",
                    "--account", "501800000001", stdin="wrong\n")
    assert err == "pen: error: wrong password (or a damaged sealed key); nothing signed"
    out = fed.out("book", "pay", "--book", tmp_path / "key.png", "--token", texts[1], "--product", "50180000",
                  "--account", "501800000001", stdin=PW + "\n")
    assert "USED" in out and fed.count() == before + 1
    assert "USED" in fed.out("token", "show", toks[0])
    # a second spend is refused by the attendant's check before any password is asked
    err = fed.fails("book", "pay", "--book", texts[0], "--token", texts[1], "--product", "50", "--account", "50")
    assert err.startswith("pen: error: token ") and "is invalid here: " in err and err.endswith("nothing signed")


def test_book_refusals(fed, tmp_path):
    toks = _book_world(fed, tmp_path)
    assert fed.fails("book", "print", "--user", "ana", "--out", tmp_path / "a.pdf") == \
        "pen: error: key ana is not sealed: seal it first with: pen keys seal ana"
    assert "--out must be a .pdf" in fed.fails("book", "print", "--user", "carlos", "--out", tmp_path / "a.txt")
    fed("keys", "new", "dora")
    fed("keys", "seal", "dora", stdin="pw\n")
    assert "is not USABLE by dora" in fed.fails("book", "print", "--user", "dora", "--tokens", toks[0],
                                                "--out", tmp_path / "d.pdf")
    assert "no usable tokens for dora" in fed.fails("book", "print", "--user", "dora", "--out", tmp_path / "d.pdf")
    dora = Keyring(fed.home).sealed_payload("dora")
    assert "is not this book's" in fed.fails("book", "pay", "--book", dora, "--token", toks[0], "--product", "50",
                                             "--account", "50", stdin="pw\n")
    assert "product 11 is not in the catalogue" in fed.fails("book", "pay", "--book", Keyring(fed.home).sealed_payload(
        "carlos"), "--token", toks[0], "--product", "11", "--account", "11")
    assert "expected one sealed key" in fed.fails("book", "pay", "--book", "pen:key:" + "ab" * 32, "--token",
                                                  toks[0], "--product", "50", "--account", "50")


def test_contact_and_sealed_keys_are_listed_and_certified_by_name(fed):
    eve = Keyring(fed.home + "-eve").new("eve")
    fed("keys", "import", "pen:key:" + eve.public_key.hex(), "--name", "eve")
    fed("keys", "seal", "ana", stdin=PW + "\n")
    listing = fed.out("keys", "show")
    assert "eve" in listing and "(contact)" in listing and "(sealed)" in listing
    fed("council", "certify", "--key", "mill", "--member", "eve")
    assert "member     of Mill" in fed.out("keys", "memberships", "eve")
    assert fed.out("keys", "show", "eve").splitlines()[2] == "public " + eve.public_key.hex()
    assert "is a contact" in fed.fails("plan", "propose", "--key", "eve", "--year", "2027", "--line", "50:1:1")
    # a sealed key signs wherever a key is asked for, once its password is typed
    assert fed.fails("plan", "propose", "--key", "ana", "--year", "2027", "--line", "50100000:1:1",
                     stdin="wrong\n") == "pen: error: wrong password (or a damaged sealed key)"
    assert "summed into Cons" in fed.out("plan", "propose", "--key", "ana", "--year", "2027",
                                         "--line", "50100000:1:1", stdin=PW + "\n")


class _FakeCamera:
    """cv2.VideoCapture's shape: blank frames first, then one showing a QR."""

    def __init__(self, frames):
        self.frames = list(frames)
        self.released = False

    def isOpened(self):
        return True

    def read(self):
        if not self.frames:
            return False, None
        return True, self.frames.pop(0)

    def release(self):
        self.released = True


def test_import_from_a_camera(fed, tmp_path, monkeypatch):
    import sys
    import types

    import numpy as np
    from PIL import Image
    pk = "ab" * 32
    qr.save_qr("pen:key:" + pk, tmp_path / "seen.png", scale=5)
    qr_frame = np.asarray(Image.open(tmp_path / "seen.png").convert("RGB"))[:, :, ::-1]  # BGR, as a camera gives
    blank = np.full_like(qr_frame, 255)
    cam = _FakeCamera([blank, blank, qr_frame])
    fake = types.SimpleNamespace(VideoCapture=lambda dev: cam, COLOR_BGR2RGB=4,
                                 cvtColor=lambda frame, code: frame[:, :, ::-1].copy())
    monkeypatch.setitem(sys.modules, "cv2", fake)
    assert fed.out("keys", "import", "--camera", "--name", "seen").startswith("imported contact seen")
    assert Keyring(fed.home).public_key("seen").hex() == pk and cam.released
    monkeypatch.setitem(sys.modules, "cv2", None)
    assert fed.fails("keys", "import", "--camera", "--name", "x") == \
        "pen: error: reading from a camera needs OpenCV: pip install opencv-python-headless"


def test_print_and_forget_leaves_only_the_book(fed, tmp_path):
    toks = _book_world(fed, tmp_path)
    kr = Keyring(fed.home)
    sealed = kr.sealed_payload("carlos")
    out = fed.out("book", "print", "--user", "carlos", "--tokens", toks[0], "--out", tmp_path / "b2.pdf", "--forget")
    assert "the sealed key left this machine" in out
    assert not kr.sealed_path("carlos").exists() and kr.public_key("carlos") == unseal_payload(sealed, PW).public_key
    assert _pdf_qrs(tmp_path / "b2.pdf")[0] == sealed
    assert "no sealed key named 'carlos'" in fed.fails("book", "print", "--user", "carlos", "--out", tmp_path / "b3.pdf")



def _video(path, frames):
    """An MJPG video of the frames (BGR): what OpenCV's VideoCapture opens
    like a camera, through the same read loop."""
    import cv2
    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert out.isOpened()
    for f in frames:
        out.write(f)
    out.release()
    return path


def test_import_through_real_opencv_videocapture(fed, tmp_path):
    """No camera here, so real OpenCV opens a video stream in its place:
    VideoCapture, read() frame by frame, BGR to RGB, zxing-cpp: the code
    path a camera takes, nothing stood in for."""
    cv2 = pytest.importorskip("cv2")
    import numpy as np
    from PIL import Image
    pk = "cd" * 32
    qr.save_qr("pen:key:" + pk, tmp_path / "seen.png", scale=6)
    img = np.asarray(Image.open(tmp_path / "seen.png").convert("RGB"))[:, :, ::-1]
    h, w = img.shape[:2]
    frame = np.full(((h + 15) // 16 * 16, (w + 15) // 16 * 16, 3), 255, np.uint8)
    frame[:h, :w] = img
    blank = np.full_like(frame, 255)
    video = _video(tmp_path / "cam.avi", [blank, blank, blank, frame, frame])
    assert cv2.VideoCapture(str(video)).isOpened()
    assert fed.out("keys", "import", "--camera", video, "--name", "seen").startswith("imported contact seen")
    assert Keyring(fed.home).public_key("seen").hex() == pk
    empty = _video(tmp_path / "empty.avi", [blank] * 3)
    assert fed.fails("keys", "import", "--camera", empty, "--name", "x") == "pen: error: no QR code seen within 20 s"
    assert fed.fails("keys", "import", "--camera", tmp_path / "none.avi", "--name", "x") == \
        "pen: error: no camera found (%s)" % (tmp_path / "none.avi")
