"""The report page in a real browser: Debian's chromium, headless, driven by Playwright for
Python (``quanta.report.browser``), opening the page from disk as a reader would.

Checks: every embedded figure has a non-zero rendered size (the collapsed ones opened
first), the console stays silent, nothing is fetched from outside the file, every number
in a table is the number of the JSON it came from, and a screenshot is written for people
to look at. Where chromium is missing the tests skip with the reason; on CI (``CI`` set)
that is a failure, since ``make test`` installs chromium there.
"""
import json
import os
from pathlib import Path

import numpy as np
import pytest

from quanta import cli, report
from empirical import PARITY_RESULTS as RESULTS
from quanta.report.browser import chromium_path, open_page
from quanta.report.content import resolve
from tests.test_report import STEPS, power_table, tokens_json


def _need_browser():
    reason = None
    try:
        import playwright  # noqa: F401
    except ImportError:
        reason = "playwright is not installed (pip install 'quanta[test]')"
    if reason is None and chromium_path() is None:
        reason = "Debian's chromium is not installed (make test installs it as root: " \
                 "apt-get install chromium)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the browser test must run on CI: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Two pages: one of a single ``quanta fit`` output, and one of an input of every
    section's kinds (per-token analyses of model sizes and of checkpoints among them), each
    made by its command in the test."""
    d = tmp_path_factory.mktemp("report")
    table = power_table(d / "losses.csv", seed=3)

    def run(*argv):
        assert cli.main([str(a) for a in argv]) == 0, argv

    run("fit", table, "--x", "N", "--y", "loss", "--bootstrap", 200, "--json", d / "fit.json")
    run("theory", "--alpha", 0.4, "--D", 1e3, 1e6, "--json", d / "theory.json")
    run("simulate", "--regime", "D", "--alpha", 0.4, "--K", 10_000, "--reps", 40,
        "--points", 16, "--x-max", 1e7, "--seed", 1, "--json", d / "simulate.json")
    run("parity", "analyze", RESULTS / "D_alpha0.4", "--json", d / "parity.json")
    run("qdg", "toy", "--alpha", 0.5, "--n-clusters", 30, "--samples", 600, "--dim", 16,
        "--sigma", 0.2, "--ks", 8, 16, "--bootstrap", 20, "--n-init", 2,
        "--json", d / "qdg_toy.json")
    everything = [d / "theory.json", d / "simulate.json", d / "fit.json", d / "parity.json",
                  RESULTS / "N_alpha0.4", d / "qdg_toy.json",
                  RESULTS.parent / "qdg" / "parity" / "threshold_0.1.json",
                  RESULTS.parent / "qdg" / "gpu_fig2_NS" / "qdg.json",
                  RESULTS.parent / "qdg" / "bias", tokens_json(d, name="tokens-sizes"),
                  tokens_json(d, *STEPS, name="tokens-steps")]
    out = {}
    for name, inputs in (("one_fit", [d / "fit.json"]), ("all", everything)):
        page = report.write(inputs, d / f"{name}.html")
        assert not page.unreadable, page.unreadable
        out[name] = (d / f"{name}.html", page)
    return out


def _rendered(page) -> dict:
    """What the browser shows: figure sizes (collapsed groups opened), traced numbers,
    requests made, console messages."""
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    sizes = page.evaluate("""Array.from(document.querySelectorAll('figure svg')).map(s => {
        const r = s.getBoundingClientRect(); return [r.width, r.height]; })""")
    numbers = page.evaluate("""Array.from(document.querySelectorAll('span[data-json]')).map(s =>
        [s.closest('table').dataset.file, s.dataset.json, s.dataset.value, s.textContent])""")
    sections = page.evaluate("Array.from(document.querySelectorAll('section.report-section'))"
                             ".map(s => s.id)")
    return {"sizes": sizes, "numbers": numbers, "sections": sections}


@pytest.mark.parametrize("name", ["one_fit", "all"])
def test_page_in_chromium(pages, name, tmp_path):
    _need_browser()
    path, built = pages[name]
    requests = []
    with open_page(path) as page:
        page.on("request", lambda r: requests.append(r.url))
        page.reload(wait_until="load")
        seen = _rendered(page)
        shot = tmp_path / f"{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        console = list(page.quanta_console)
    assert console == [], console
    assert [u for u in requests if not u.startswith("file://")] == []
    assert len(seen["sizes"]) == built.n_figures > 0
    assert all(w > 50 and h > 50 for w, h in seen["sizes"]), seen["sizes"]
    assert seen["sections"] == [s.key for s in built.sections]
    _check_numbers(seen["numbers"])
    from PIL import Image
    image = Image.open(shot)
    assert image.width == 1280 and image.height > 900
    assert len(image.convert("L").getcolors(maxcolors=1 << 16) or range(1 << 16)) > 16


def _check_numbers(numbers):
    """Each traced number equals the JSON's, and is shown to four significant digits."""
    assert numbers, "no traced numbers on the page"
    docs = {}
    for file, ptr, value, text in numbers:
        doc = docs.setdefault(file, json.loads(Path(file).read_text()))
        exact = resolve(doc, ptr)
        assert float(value) == exact, (file, ptr)
        assert abs(float(text) - exact) <= 5.0001e-4 * abs(exact), (file, ptr, text, exact)


def test_every_section_kind_is_on_the_page(pages):
    _, built = pages["all"]
    assert [s.key for s in built.sections] == ["predictions", "montecarlo", "fits", "parity",
                                               "qdg", "tokens"]
    parity = next(s for s in built.sections if s.key == "parity")
    # the analysis JSON and the run folder analysed by the report: both blocks, all fits
    assert len(parity.blocks) == 2 and all(b.rows for b in parity.blocks)
    assert np.isfinite([r.value.value for r in parity.rows
                        if r.value.value is not None]).all()
    tokens = next(s for s in built.sections if s.key == "tokens")
    # sizes: mean loss, p(L), L·p(L), examples; checkpoints add the heat map; 2 collapsed each
    assert [(len(b.figures), len(b.more[0][1]), len(b.rows)) for b in tokens.blocks] == \
        [(4, 2, 4), (5, 2, 4)]


def test_the_token_section_in_chromium(pages):
    """The per-token section as the browser shows it: every figure drawn, and every table
    number, the generator's truth among them, the JSON's."""
    _need_browser()
    path, built = pages["all"]
    tokens = next(s for s in built.sections if s.key == "tokens")
    with open_page(path) as page:
        page.evaluate("document.querySelectorAll('#tokens details').forEach(d => d.open = true)")
        sizes = page.evaluate("""Array.from(document.querySelectorAll('#tokens figure svg'))
            .map(s => { const r = s.getBoundingClientRect(); return [r.width, r.height]; })""")
        numbers = page.evaluate("""Array.from(document.querySelectorAll(
            '#tokens span[data-json]')).map(s => [s.closest('table').dataset.file,
            s.dataset.json, s.dataset.value, s.textContent])""")
        page.locator("#tokens").screenshot(path=str(Path(path).parent / "tokens.png"))
    assert len(sizes) == sum(len(b.figures) + len(b.more[0][1]) for b in tokens.blocks) == 13
    assert all(w > 50 and h > 50 for w, h in sizes), sizes
    pointers = {ptr for _, ptr, _, _ in numbers}
    assert {"/estimates/alpha_offset/value", "/estimates/alpha_drops/ci/0",
            "/estimates/monogenic_fraction/ci/1", "/truth/alpha", "/truth/monogenic"} <= pointers
    assert len(numbers) == 2 * (3 * 4 + 3)       # per block: 4 rows of 3, and 3 truths
    _check_numbers(numbers)


def test_screenshot_command_writes_a_small_png(pages, tmp_path, capsys):
    _need_browser()
    path, _ = pages["one_fit"]
    png = tmp_path / "shot.png"
    assert cli.main(["report", str(Path(path).parent / "fit.json"), "--out",
                     str(tmp_path / "r.html"), "--screenshot", str(png)]) == 0
    from PIL import Image
    image = Image.open(png)
    assert image.size == (1280, 900) and png.stat().st_size < 200_000


def test_the_browser_checks_can_fail(tmp_path):
    """The harness sees a console error, an outside request and a figure of no size."""
    _need_browser()
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><figure><svg width='0' height='0'></svg>"
                   "</figure><img src='http://example.invalid/x.png'>"
                   "<script>console.error('broken')</script></body></html>")
    requests = []
    with open_page(bad) as page:
        page.on("request", lambda r: requests.append(r.url))
        page.reload(wait_until="load")
        sizes = page.evaluate("Array.from(document.querySelectorAll('figure svg')).map(s => "
                              "s.getBoundingClientRect().width)")
        console = list(page.quanta_console)
    assert "error: broken" in console
    assert "http://example.invalid/x.png" in requests
    assert sizes == [0]
