"""The credit book: tokens on paper for a user without a device.

The seed's Carlos "does not own any devices that could be used to pay with,
but he have a credit book. He shows the shop attendant what tokens he wants
to use ... Carlos signs by entering his password." The book's first page
carries Carlos's signing key sealed with his password (pen:sealed:, see
pen/keys.py) as a QR; every further cell one token: its QR (pen:token:REF:VALUE)
and, readable by a person, its value and ref. The store device reads the key
QR and the token QR, Carlos types the password, the device signs the USE.
Losing the book loses no credits to a finder without the password.
"""
import io

from .qr import token_payload

PER_PAGE = 6  # two columns of three tokens on an A5 page


class BookError(ValueError):
    pass


def _fpdf():
    try:
        from fpdf import FPDF
    except ImportError:
        raise BookError("printing a credit book needs fpdf2: pip install 'pen[economy]'")
    return FPDF


def _qr_png(text, scale=5):
    import segno
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=scale, border=4)
    buf.seek(0)
    return buf


def make_pdf(path, user_name, user_kid, sealed_payload, tokens, economy=""):
    """tokens: [(ref, value, issuer name)]. Writes the PDF to path."""
    FPDF = _fpdf()
    pdf = FPDF(format=(148, 210))  # A5
    pdf.set_auto_page_break(False)
    pdf.set_creation_date(__import__("datetime").datetime(2026, 1, 1))  # the same bytes for the same book
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 12, "Pen credit book", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    for line in ("Holder: %s" % user_name, "Key id: %s" % user_kid.hex(), economy and "Economy: %s" % economy,
                 "%d tokens, %d credits" % (len(tokens), sum(v for _, v, _ in tokens))):
        if line:
            pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.image(_qr_png(sealed_payload, 4), x=34, w=80, h=80)
    pdf.set_y(pdf.get_y() + 82)
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 5, "Your signing key, sealed with your password. To pay, the store scans this code and the "
                         "token's code, and you type your password on its device. Without the password this page "
                         "cannot sign anything. Each token can be used once.")
    for i in range(0, len(tokens), PER_PAGE):
        pdf.add_page()
        for j, (ref, value, issuer) in enumerate(tokens[i:i + PER_PAGE]):
            col, row = j % 2, j // 2
            x, y = 10 + col * 66, 12 + row * 64
            pdf.image(_qr_png(token_payload(ref, value)), x=x + 8, y=y, w=44, h=44)
            pdf.set_xy(x, y + 45)
            pdf.set_font("Helvetica", "B", 12)
            pdf.cell(60, 6, "{:,} credits".format(value), align="C")
            pdf.set_xy(x, y + 51)
            pdf.set_font("Helvetica", "", 8)
            pdf.cell(60, 4, "token %s:%d" % (ref[:4].hex(), int.from_bytes(ref[4:], "big")), align="C")
            pdf.set_xy(x, y + 55)
            pdf.cell(60, 4, ("issued by " + issuer)[:40], align="C")
    pdf.output(str(path))
