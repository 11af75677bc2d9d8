"""The register in headless Chromium, end to end through a unix-port node on
a pty: scan (the page's own decoder reading an uploaded photo) to verified
receipt, a double spend, a credit book with a wrong then a right password,
change, a cut link and a reload, 320 px, keyboard only, axe-core."""
import time

import pytest

from pen import build as B
from pen.economy import qr
from pen_protocol import records as R
from world import ANA, CARLOS, FOOD, PASSWORD, sealed_book
from browser import browser, camera_browser, page, shot, till, y4m  # noqa: F401  (fixtures)

pytestmark = pytest.mark.micropython


def _qr_png(tmp_path, text, name):
    path = tmp_path / (name + ".png")
    qr.save_qr(text, path)
    return path


def _scan_photo(page, path):
    page.set_input_files("#qrfile", str(path))
    page.click("#typed button[type=submit]")


def _row(page, token):
    return page.locator("#payments tbody tr", has_text="%s:%d" % (token[:4].hex(), R.ref_serial(token)))


def _wait_state(page, token, state, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r = _row(page, token)
        if r.count() and r.first.get_attribute("data-state") == state:
            return
        page.wait_for_timeout(200)
    raise AssertionError("payment for %s not %s: %s" % (token.hex(), state, page.inner_text("#payments")))


def test_payment_from_scan_to_receipt_then_double_spend_refused(page, till, tmp_path):
    ref = till.tokens["ana1"]
    till.air.users[ref] = ANA.public_key
    use = B.use(ANA, ref, FOOD, FOOD)
    _scan_photo(page, _qr_png(tmp_path, qr.record_payload(use.raw), "use"))
    page.wait_for_selector("#payuse:not([hidden])")
    assert page.inner_text("#answer").startswith("Cannot know yet: the signatures check")
    shot(page, "answer", doc=True)
    page.click("#payuse button")
    page.wait_for_selector("#answer.pending")
    _wait_state(page, ref, "pending", 5)
    _wait_state(page, ref, "accounted", 40)
    page.wait_for_selector("#answer.valid")
    assert page.inner_text("#answer") == "accounted (receipt verified)"
    p = till.outbox().get(use.id)
    assert p.state == "accounted" and p.receipt == till.air.receipts[-1]
    assert page.inner_text("#link-0") == "yes"
    shot(page, "day", doc=True)
    # the same token offered again, for something else
    again = B.use(ANA, ref, "501000000002", FOOD)
    _scan_photo(page, _qr_png(tmp_path, qr.record_payload(again.raw), "again"))
    page.wait_for_selector("#answer.invalid")
    assert page.inner_text("#answer") == "Invalid: this token was already spent."
    assert page.is_hidden("#payuse")
    assert till.outbox().get(again.id) is None
    shot(page, "double-spend", doc=True)
    # another store's register (its own outbox, a copy synced before): the village node has seen it spent
    from pen.register.core import Refused, Register
    from world import build
    other = Register(build(tmp_path / "copy2.sqlite")[0], tmp_path / "other.sqlite", FOOD,
                     spent=till.worker.ask_spent)
    assert till.worker.ask_spent(ref) is True and till.worker.ask_spent(till.tokens["ana4"]) is False
    with pytest.raises(Refused) as e:
        other.pay_use(again.raw)
    assert (e.value.key, e.value.detail) == ("spent-in-village",
                                             "the village node has heard it spent (unverified: cannot know yet)")
    assert other.outbox.all() == []


def test_credit_book_wrong_then_right_password(page, till):
    ref = till.tokens["book2"]
    till.air.users[ref] = CARLOS.public_key
    page.fill("#qrtext", qr.token_payload(ref, 1000))
    page.click("#typed button[type=submit]")
    page.wait_for_selector("#paybook:not([hidden])")
    assert "credit-book token" in page.inner_text("#answer")
    page.fill("#book", sealed_book())
    page.fill("#product", FOOD)
    page.fill("#password", PASSWORD + "x")
    page.click("#paybook button[type=submit]")
    page.wait_for_selector("#answer.invalid")
    assert page.inner_text("#answer") == "wrong password. Nothing was signed; try again."
    assert till.outbox().by_token(ref) == []
    shot(page, "wrong-password", doc=True)
    page.fill("#password", PASSWORD)
    page.click("#paybook button[type=submit]")
    page.wait_for_selector("#answer.pending")
    assert page.input_value("#password") == ""  # the password does not stay on the page
    _wait_state(page, ref, "accounted", 40)


def test_change_for_a_book_token(page, till):
    ref = till.tokens["book1"]
    till.air.users[ref] = CARLOS.public_key
    page.fill("#cvalue", "10000")
    page.fill("#cprice", "3000")
    page.click("#change button")
    page.wait_for_selector("#changeout.valid")
    assert page.inner_text("#changeout") == "Change owed: 7000 = 5000 + 2000"
    page.click("#give")  # to whom? no book scanned yet: refused, nothing given
    page.wait_for_selector("#changeout.invalid")
    assert page.inner_text("#changeout") == "scan the credit book's key QR first."
    assert till.copy().get(b"T" + till.tokens["change0"])[4] is None
    page.fill("#qrtext", qr.token_payload(ref, 10000))
    page.click("#typed button[type=submit]")
    page.wait_for_selector("#paybook:not([hidden])")
    assert page.input_value("#cvalue") == "10000"  # the scanned token's value, for the change
    page.fill("#book", sealed_book())
    page.fill("#product", FOOD)
    page.fill("#password", PASSWORD)
    page.check("#toexchange")
    page.click("#paybook button[type=submit]")
    page.wait_for_selector("#answer.pending")
    page.click("#change button")
    page.wait_for_selector("#give:not([hidden])")
    page.click("#give")
    page.wait_for_function("document.querySelector('#changeout').textContent === 'Change owed: 7000 — given to the book holder'")
    copy = till.copy()
    gave = [copy.get(b"T" + till.tokens["change%d" % i]) for i in range(4)]
    assert sorted(t[1] for t in gave if t[4] == CARLOS.public_key) == [2000, 5000]
    shot(page, "change", doc=True)
    _wait_state(page, ref, "accounted", 40)


def test_cut_link_and_reload_keep_the_payment_then_it_goes(page, till, tmp_path):
    ref = till.tokens["ana2"]
    till.air.users[ref] = ANA.public_key
    till.cut.set()
    till.stop_worker()
    till.start_worker()  # tries, fails, tries again: the link is cut
    use = B.use(ANA, ref, FOOD, FOOD)
    page.fill("#qrtext", qr.record_payload(use.raw))
    page.click("#typed button[type=submit]")
    page.click("#payuse button")
    _wait_state(page, ref, "pending", 5)
    page.reload()
    _wait_state(page, ref, "pending", 5)
    page.wait_for_function("document.querySelector('#link-0').textContent === 'no'")
    page.wait_for_function("document.querySelector('#link-4').textContent === 'link cut (test)'")
    assert page.inner_text("#link-2") == "1"  # the queue to the node
    shot(page, "offline", doc=True)
    till.cut.clear()
    _wait_state(page, ref, "accounted", 40)
    assert page.inner_text("#link-2") == "0"
    page.wait_for_function("document.querySelector('#link-4').textContent === 'none'")


def test_keyboard_only_payment(page, till):
    ref = till.tokens["ana3"]
    use = B.use(ANA, ref, FOOD, FOOD)
    seen = []
    for _ in range(10):  # from the top of the page to the text box, by Tab alone
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.id"))
        if seen[-1] == "qrtext":
            break
    assert seen == ["cam", "qrtext"]
    page.keyboard.insert_text(qr.record_payload(use.raw))
    page.keyboard.press("Tab")  # the file chooser
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Check"
    page.keyboard.press("Enter")
    page.wait_for_selector("#payuse:not([hidden])")
    assert page.evaluate("document.activeElement.textContent") == "Take this payment"  # focus moved to it
    page.keyboard.press("Enter")
    _wait_state(page, ref, "pending", 5)


def test_320px_layout_and_axe(page, till):
    from axe_playwright_python.sync_playwright import Axe
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    for sel in ("#cam", "#typed button", "#refresh", "#change button"):
        box = page.locator(sel).bounding_box()
        assert box["height"] >= 44 and box["width"] >= 280, (sel, box)
    page.fill("#qrtext", "hello")
    page.click("#typed button[type=submit]")
    page.wait_for_selector("#answer.invalid")
    assert page.inner_text("#answer") == "this is not a Pen QR code."
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    shot(page, "320px", doc=True)


def test_camera_scan_to_receipt(browser, till, tmp_path):
    """The camera path: Chromium's fake camera films the customer's QR; the
    page's bundled decoder reads the frames."""
    ref = till.tokens["ana4"]
    till.air.users[ref] = ANA.public_key
    use = B.use(ANA, ref, FOOD, FOOD)
    video = y4m(_qr_png(tmp_path, qr.record_payload(use.raw), "cam"), tmp_path / "cam.y4m")
    cam = camera_browser(browser, video)
    try:
        page = cam.new_page(viewport={"width": 320, "height": 640})
        page.set_default_timeout(15000)
        page.goto(till.url)
        page.click("#cam")
        page.wait_for_selector("#payuse:not([hidden])")
        assert page.input_value("#qrtext") == qr.record_payload(use.raw)
        assert page.is_hidden("#video")  # the camera stops once a code is read
        page.click("#payuse button")
        _wait_state(page, ref, "accounted", 40)
    finally:
        cam.close()
