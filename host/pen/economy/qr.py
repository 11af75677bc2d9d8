"""QR codes read back: from an image file (zxing-cpp), from a camera where
one exists (OpenCV), or from text. Joining needs them: "it could for example
be meeting and snapping each others QR codes, transfer via a NFC link or
USB" (the seed). What a QR may carry is a payload: pen:key:, pen:sealed:,
pen:rec: (a signed record, e.g. a member certificate) or pen:token:."""
import base64
from pathlib import Path

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
MAX_TEXT_FILE = 64 * 1024  # a key file on a USB stick is a line; refuse to read a disk image
REC_PAYLOAD = "pen:rec:"
TOKEN_PAYLOAD = "pen:token:"


class QRError(ValueError):
    pass


def _zxing():
    try:
        import zxingcpp
    except ImportError:
        raise QRError("reading QR codes needs zxing-cpp: pip install 'pen[economy]'")
    return zxingcpp


def decode_image(path_or_image):
    """Every QR text in an image (a path or a PIL image), in reading order."""
    zx = _zxing()
    from PIL import Image, UnidentifiedImageError
    img = path_or_image
    if not hasattr(img, "size"):
        try:
            img = Image.open(path_or_image)
            img.load()
        except (OSError, UnidentifiedImageError) as e:
            raise QRError("cannot read image %s: %s" % (path_or_image, e))
    found = zx.read_barcodes(img.convert("L"), formats=zx.BarcodeFormat.QRCode)
    return [r.text for r in found if r.valid]


def camera_device(text):
    """--camera's argument: a camera index (0 is the first camera), else
    what OpenCV's VideoCapture opens by name: a device such as
    /dev/video2, a video file, or a phone camera's stream URL."""
    t = str(text).strip()
    return int(t) if t.isdigit() else t


def from_camera(seconds=20, device=0, clock=None):
    """The first QR a camera sees within seconds: OpenCV's VideoCapture,
    frame by frame (BGR, as cameras give them) to zxing-cpp. A named
    source that ends (a video file) ends the search early."""
    try:
        import cv2
    except ImportError:
        raise QRError("reading from a camera needs OpenCV: pip install opencv-python-headless")
    if clock is None:
        import time
        clock = time.monotonic
    from PIL import Image
    cam = cv2.VideoCapture(device)
    if not cam.isOpened():
        raise QRError("no camera found (%s)" % (("device %d" % device) if isinstance(device, int) else device))
    try:
        end = clock() + seconds
        while clock() < end:
            ok, frame = cam.read()
            if not ok:
                if isinstance(device, int):
                    continue  # a camera may drop a frame; a stream that ended has nothing more
                break
            texts = decode_image(Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
            if texts:
                return texts[0]
    finally:
        cam.release()
    raise QRError("no QR code seen within %d s" % seconds)


def read_source(source):
    """The payload texts a source holds: the source itself when it is a
    payload, else a file (an image of QR codes, or text with one payload
    a line, e.g. a key file on a USB stick)."""
    s = source.strip()
    if s.startswith("pen:"):
        return [s]
    p = Path(source)
    if not p.is_file():
        raise QRError("%s is neither a pen: payload nor a readable file" % source)
    if p.suffix.lower() in IMAGE_EXT:
        texts = decode_image(p)
        if not texts:
            raise QRError("no QR code found in %s" % p)
        return texts
    if p.stat().st_size > MAX_TEXT_FILE:
        raise QRError("%s is too large for a key file" % p)
    try:
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except UnicodeDecodeError:
        raise QRError("%s is not a text key file or an image" % p)
    if not lines:
        raise QRError("%s is empty" % p)
    return lines


def record_payload(raw):
    return REC_PAYLOAD + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def parse_record_payload(text):
    body = text.strip()[len(REC_PAYLOAD):]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise QRError("damaged %s payload" % REC_PAYLOAD)


def token_payload(ref, value):
    return "%s%s:%d" % (TOKEN_PAYLOAD, bytes(ref).hex(), value)


def parse_token_payload(text):
    t = text.strip()
    if not t.startswith(TOKEN_PAYLOAD):
        raise QRError("not a token payload")
    try:
        ref_hex, value = t[len(TOKEN_PAYLOAD):].split(":")
        ref = bytes.fromhex(ref_hex)
        if len(ref) != 8:
            raise ValueError
        return ref, int(value)
    except ValueError:
        raise QRError("damaged %s payload" % TOKEN_PAYLOAD)


def save_qr(text, path, scale=6):
    import segno
    segno.make(text, error="m").save(str(path), scale=scale, border=4)
