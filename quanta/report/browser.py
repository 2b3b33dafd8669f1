"""The page in a real browser: Debian's chromium driven by Playwright for Python (the test
extra), never a browser downloaded at run time. Used by the browser test and by
``quanta report --screenshot``."""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from common.errors import InputError, MissingExtraError, require

#: where Debian's chromium package puts the browser
CHROMIUM = "/usr/bin/chromium"

#: flags that work on machines without a display, a GPU or a network (a fresh profile
#: comes from Playwright, which starts every browser with a new temporary user-data-dir)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def chromium_path() -> str | None:
    """The system chromium (``QUANTA_CHROMIUM`` overrides), or None if there is none."""
    path = os.environ.get("QUANTA_CHROMIUM") or CHROMIUM
    return path if Path(path).is_file() else shutil.which("chromium")


@contextlib.contextmanager
def open_page(html: str | os.PathLike, width: int = 1280, height: int = 900):
    """A Playwright page showing the HTML file ``html`` (from disk, as a user opens it),
    with every console message and page error collected in ``page.quanta_console``."""
    require("playwright", "test")
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise MissingExtraError("no chromium: install Debian's package (apt-get install "
                                "chromium) or set QUANTA_CHROMIUM to a chromium binary")
    path = Path(html).resolve()
    if not path.is_file():
        raise InputError(f"{html}: no such file")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=list(FLAGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            messages: list[str] = []
            page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
            page.quanta_console = messages
            page.goto(path.as_uri(), wait_until="load")
            yield page
        finally:
            browser.close()


def screenshot(html, png, width: int = 1280, height: int = 900, full_page: bool = False,
               colors: int | None = 128) -> Path:
    """Save a PNG of the page's top (``width`` × ``height``; the whole page with
    ``full_page``), with its palette reduced to ``colors`` to keep the file small."""
    png = Path(png)
    with open_page(html, width, height) as page:
        data = page.screenshot(full_page=full_page)
    from io import BytesIO

    from PIL import Image

    from common.files import atomic_write

    image = Image.open(BytesIO(data))
    if colors:
        image = image.convert("RGB").quantize(colors=colors, dither=Image.Dither.NONE)
    atomic_write(png, lambda fh: image.save(fh, format="PNG", optimize=True))
    return png
