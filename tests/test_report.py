"""``quanta report``: inputs recognised by content, unreadable ones named, the agreement
sentence, one fit as a one-section page, the demo's page. The page in a real browser is
tests/test_report_browser.py."""
import json
import re
from html import unescape

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from quanta import cli, report
from empirical import PARITY_RESULTS as RESULTS
from quanta.report.content import Cell, Row, agreement, pointer, resolve
from quanta.report.inputs import kind_of, read_inputs
from tests.strategies import seeds


def power_table(path, seed=0, alpha=0.3, n=14):
    """A loss table L = 2 N^-alpha with 1 % log-normal noise, as a user might have."""
    rng = np.random.default_rng(seed)
    N = np.geomspace(1e4, 1e9, n)
    loss = 2.0 * N ** -alpha * np.exp(0.01 * rng.standard_normal(n))
    path.write_text("N,loss\n" + "".join(f"{a:.8g},{b:.8g}\n" for a, b in zip(N, loss)))
    return path


def fit_json(tmp_path, capsys, *extra):
    table = power_table(tmp_path / "losses.csv")
    out = tmp_path / "fit.json"
    assert cli.main(["fit", str(table), "--x", "N", "--y", "loss", "--bootstrap", "200",
                     "--json", str(out), *extra]) == 0
    capsys.readouterr()
    return out


def tokens_json(folder, *axis, name="tokens", n_tokens=20_000, seed=3):
    """A generated per-token loss matrix (``quanta tokens generate``, with its truth) analysed
    by ``quanta tokens analyze --json``; ``axis``: e.g. ``"--steps", 1e3, 1e4, …``."""
    data, out = folder / f"{name}.npz", folder / f"{name}.json"
    assert cli.main(["tokens", "generate", str(data), "--n-tokens", str(n_tokens),
                     "--seed", str(seed), *map(str, axis)]) == 0
    assert cli.main(["tokens", "analyze", str(data), "--bootstrap", "200", "--fit-bootstrap",
                     "100", "--json", str(out)]) == 0
    return out


#: the checkpoints of the generated checkpoint analyses
STEPS = ("--steps", *(1000 * 2 ** k for k in range(8)))


def spans(html: str):
    """(data-json pointer, data-value, shown text) of every traced number on the page."""
    return re.findall(r'<span class="value" data-json="([^"]*)" data-value="([^"]*)">([^<]*)<',
                      html)


def test_one_fit_is_a_valid_one_section_page(tmp_path, capsys):
    src = fit_json(tmp_path, capsys)
    doc = json.loads(src.read_text())
    page_path = tmp_path / "report.html"
    assert cli.main(["report", str(src), "--out", str(page_path)]) == 0
    assert "(1 section, 1 figure)" in capsys.readouterr().out
    html = page_path.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert html.count('class="report-section"') == 1 and 'id="fits"' in html
    assert html.count("<svg") == 1 and "http://" not in html.replace(
        "http://www.w3.org/", "")                    # self-contained: no outside resource
    cells = {p: float(v) for p, v, _ in spans(html)}
    assert cells["/params/alpha"] == doc["params"]["alpha"]
    assert [cells["/ci/alpha/0"], cells["/ci/alpha/1"]] == doc["ci"]["alpha"]
    assert cells["/alpha_implied/N/value"] == doc["alpha_implied"]["N"]["value"]
    assert abs(doc["params"]["alpha"] - 0.3) < 0.01       # the data's exponent, recovered


def test_every_traced_number_is_the_json_number_and_shown_rounded(tmp_path, capsys):
    src = fit_json(tmp_path, capsys)
    doc = json.loads(src.read_text())
    html = report.render(report.build([src]))
    found = spans(html)
    assert len(found) >= 6
    for ptr, value, text in found:
        exact = resolve(doc, ptr)
        assert float(value) == exact
        # four significant digits
        assert abs(float(text) - exact) <= 5e-4 * abs(exact) * 1.0001, (ptr, text, exact)


def test_a_refit_that_differs_from_the_saved_fit_is_said(tmp_path, capsys):
    src = fit_json(tmp_path, capsys)
    doc = json.loads(src.read_text())
    doc["params"]["alpha"] *= 1.01          # as if the data file changed since
    src.write_text(json.dumps(doc))
    html = report.render(report.build([src]))
    assert "differs from the saved estimates by up to 0.0" in html
    assert f'data-value="{doc["params"]["alpha"]}"' in html      # the table keeps the saved


def test_missing_data_file_leaves_the_table_and_says_why(tmp_path, capsys):
    """A fit's JSON without its data block (an older one) is drawn from the file it names;
    when that is gone the table stays and the page says why."""
    src = fit_json(tmp_path, capsys)
    doc = json.loads(src.read_text())
    assert doc["data"]["x"]                # what quanta fit writes now: the figure needs no file
    del doc["data"]
    src.write_text(json.dumps(doc))
    (tmp_path / "losses.csv").unlink()
    page = report.build([src])
    block = page.sections[0].blocks[0]
    assert not block.figures and any("was not found" in n for n in block.notes)
    assert block.rows[0].value.value == json.loads(src.read_text())["params"]["alpha"]


def test_unreadable_inputs_are_named_on_the_page_and_stderr(tmp_path, capsys):
    src = fit_json(tmp_path, capsys)
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "other.json").write_text('{"something": 1}')
    (tmp_path / "broken.json").write_text('{"form": ')
    # a simulate document whose points lack their keys: recognised, then refused with why
    (tmp_path / "odd.json").write_text(json.dumps(
        {"config": {}, "points": [{}], "theory_exponent": 0.3}))
    inputs = [src, tmp_path / "notes.txt", tmp_path / "other.json", tmp_path / "broken.json",
              tmp_path / "odd.json", tmp_path / "missing.json"]
    out = tmp_path / "r.html"
    assert cli.main(["report", *map(str, inputs), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    html = unescape(out.read_text())
    for name, why in [("notes.txt", "not a JSON file"), ("other.json", "top level: something"),
                      ("broken.json", "not valid JSON"), ("odd.json", "read as 'simulate'"),
                      ("missing.json", "no such file")]:
        assert re.search(rf"not read: \S*{name}: .*{why}", err), (name, err)
        assert name in html and why in html
    assert "Inputs not read (5)" in html


def test_nothing_readable_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "x.json").write_text("[1, 2]")
    assert cli.main(["report", str(tmp_path / "x.json"), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "nothing to report" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


def test_fit_literature_sizes_and_qdg_parity_outputs(tmp_path, capsys):
    assert cli.main(["fit", "literature", "--json", str(tmp_path / "lit.json")]) == 0
    sizes = tmp_path / "sizes.txt"
    sizes.write_text("\n".join(str(int(1000 * k ** -1.5)) for k in range(1, 80)))
    assert cli.main(["fit", "sizes", str(sizes), "--method", "ols", "--bootstrap", "50",
                     "--json", str(tmp_path / "sizes.json")]) == 0
    capsys.readouterr()
    qdg_parity = RESULTS.parent / "qdg" / "parity" / "threshold_0.1.json"
    page = report.build([tmp_path / "lit.json", tmp_path / "sizes.json", qdg_parity])
    assert not page.unreadable
    assert [s.key for s in page.sections] == ["fits", "qdg"]
    lit, rank = page.sections[0].blocks
    assert lit.rows[0].value.value == json.loads((tmp_path / "lit.json").read_text())[
        "median_gap"] and len(lit.figures) == 1
    sdoc = json.loads((tmp_path / "sizes.json").read_text())
    assert [rank.rows[0].value.value, *rank.rows[0].interval] == [sdoc["alpha_hat"], *sdoc["ci"]]
    qdg = page.sections[1].blocks[0]
    doc = json.loads(qdg_parity.read_text())
    last = [r for r in doc["checkpoints"] if r.get("ari") is not None][-1]
    assert [r.value.value for r in qdg.rows] == [e["alpha_hat"] for e in
                                                 last["estimators"].values()]
    assert all(r.predicted == doc["alpha_true"] for r in qdg.rows)
    assert len(qdg.figures) == 2


def test_parity_alphas_output_is_one_block_of_seed_means_and_one_figure(tmp_path, capsys):
    """`quanta parity alphas --json` (the shipped GPU D sweep, our method): one block whose
    rows are the seed-mean exponents against α/(α+1), read from the JSON, one figure for all
    the runs, and the coverage as a note."""
    out = tmp_path / "alphas.json"
    runs = [str(RESULTS / f"gpu_D_alpha{a}") for a in (0.1, 0.3)]
    assert cli.main(["parity", "alphas", *runs, "--method", "quanta", "--json", str(out)]) == 0
    capsys.readouterr()
    doc = json.loads(out.read_text())
    page = report.build([out])
    assert not page.unreadable and [s.key for s in page.sections] == ["parity"]
    (block,) = page.sections[0].blocks
    means = [r for r in doc["rows"] if r["seed"] == "mean"]
    assert [(r.value.value, *r.interval, r.predicted) for r in block.rows] == [
        (r["exponent"], r["lower"], r["upper"], r["theory"]) for r in means]
    assert [r.predicted for r in block.rows] == pytest.approx([0.1 / 1.1, 0.3 / 1.3])
    assert len(block.figures) == 1 and "α_D against α" in block.title
    assert any(n.startswith("quanta:D: the prediction inside") for n in block.notes)


def test_a_method_key_is_shown_and_a_holdout_block_is_read(tmp_path, capsys):
    """Keys other commands add: the parity analysis's ``method`` (ours or the paper's) and
    the fit's ``holdout`` block."""
    src, paper = tmp_path / "parity.json", tmp_path / "parity-paper.json"
    assert cli.main(["parity", "analyze", str(RESULTS / "D_alpha0.4"), "--json", str(src)]) == 0
    assert cli.main(["parity", "analyze", str(RESULTS / "D_alpha0.4"), "--method", "paper",
                     "--json", str(paper)]) == 0
    fit = fit_json(tmp_path, capsys)
    fdoc = json.loads(fit.read_text())
    fdoc["holdout"] = {"x": [2e9, 4e9], "observed": [0.0032, 0.0026],
                       "predicted": [0.0033, 0.0027], "lower": [0.0031, 0.0025],
                       "upper": [0.0035, 0.0029], "rel_error": [0.03, 0.04], "rmsle": 0.035}
    fit.write_text(json.dumps(fdoc))
    html = unescape(report.render(report.build([src, paper, fit])))
    assert "<th>method</th>" in html
    assert html.count("<td>paper</td>") > 0 and html.count("<td>quanta</td>") > 0
    assert "predicted with an RMSLE of 0.035 (the fit's holdout block)" in html


def test_a_grouped_fit_is_one_block_per_group(tmp_path, capsys):
    """``quanta fit --group`` writes group → fit document: each is drawn as a fit of its
    own, titled with its group, its numbers traced to the group's document."""
    first, second = power_table(tmp_path / "a.csv"), power_table(tmp_path / "b.csv", seed=1,
                                                                   alpha=0.5)
    table = tmp_path / "both.csv"
    table.write_text("set," + first.read_text().splitlines()[0] + "\n" + "".join(
        f"{name},{line}\n" for name, path in (("a", first), ("b", second))
        for line in path.read_text().splitlines()[1:]))
    out = tmp_path / "groups.json"
    assert cli.main(["fit", str(table), "--x", "N", "--y", "loss", "--group", "set",
                     "--bootstrap", "50", "--json", str(out)]) == 0
    capsys.readouterr()
    page = report.build([out])
    blocks = page.sections[0].blocks
    assert [b.title for b in blocks] == ["Fit: both.csv [set = a]", "Fit: both.csv [set = b]"]
    doc = json.loads(out.read_text())
    assert [b.rows[0].value.value for b in blocks] == [
        doc["groups"][g]["params"]["alpha"] for g in ("a", "b")]
    assert all(b.figures for b in blocks)


def test_qdg_on_several_networks_of_the_gpu_run(capsys):
    """The shipped ``quanta qdg parity --networks widest:5`` result: one block, the by-width
    figure and a rank-frequency figure per network, each network's estimators and its
    calibrated α against the data's α, every number the JSON's."""
    src = RESULTS.parent / "qdg" / "gpu_fig2_NS" / "qdg.json"
    doc = json.loads(src.read_text())
    page = report.build([src])
    assert not page.unreadable and [s.key for s in page.sections] == ["qdg"]
    block = page.sections[0].blocks[0]
    nets = doc["networks"]
    assert f"QDG on {len(nets)} networks" in block.title and "loss < 0.1 nats" in block.title
    assert len(block.figures) == 1 and [len(f) for _, f in block.more] == [len(nets)]
    expected = []
    for net in nets:
        last = [c for c in net["checkpoints"] if c.get("ari") is not None][-1]
        expected += [(e["alpha_hat"], *e["ci"]) for e in last["estimators"].values()]
        cal = last["calibrated"]
        expected.append((cal["alpha_calibrated"], *cal["ci_calibrated"]))
    assert [(r.value.value, r.lower.value, r.upper.value) for r in block.rows] == expected
    assert {r.predicted for r in block.rows} == {doc["networks"][0]["alpha_true"]}
    for ptr, value, _ in spans(report.render(page)):
        assert resolve(doc, ptr) == float(value), ptr


@pytest.mark.parametrize("doc, kind", [
    ({"alpha": 0.4, "alpha_N": 0.4, "alpha_D": 0.29, "alpha_S": 0.29, "compute_optimal": {}},
     "theory"),
    ({"config": {}, "points": [], "theory_exponent": 0.3}, "simulate"),
    ({"D": {"config": {}, "points": [], "theory_exponent": 0.3}}, "simulate"),
    ({"form": "power", "params": {}, "ci": {}}, "fit"),
    ({"group_by": "set", "groups": {"a": {"form": "power", "params": {}, "ci": {}}}},
     "fit-groups"),
    ({"regimes": {"D": {"form": "power", "params": {}, "ci": {}}}}, "fit-regimes"),
    ({"points": [], "median_gap": 0.1}, "literature"),
    ({"method": "mle", "alpha_hat": 0.5, "rank_exponent": 1.5, "ci": [0, 1]}, "sizes"),
    ({"alpha_N": 0.3, "alpha_D": 0.2, "gap": 0.0, "gap_ci": [0, 0]}, "consistency"),
    ({"runs": [], "threshold": 0.1, "unit": "nats"}, "parity"),
    ({"run_dir": "r", "checkpoints": [], "alpha_true": 0.4}, "qdg-parity"),
    ({"alpha_true": 0.4, "estimators": {}, "sizes": {}}, "qdg-toy"),
    ({"run_dir": "r", "networks": [{"run_dir": "r", "checkpoints": []}]}, "qdg-networks"),
    ({"run_dir": "r", "networks": []}, None),
    ({"estimators": [], "recommended": None}, "qdg-bias"),
    ({"axis": "sizes", "x": [], "mean_loss": [], "estimates": {}, "classification": {}},
     "tokens"),
    ({"runs": {}, "threshold": 0.1, "unit": "nats"}, None),
    ([{"form": "power"}], None),
])
def test_kind_is_read_from_content(doc, kind):
    assert kind_of(doc) == kind


def test_folders_stand_for_what_they_hold(tmp_path, capsys):
    fit_json(tmp_path, capsys)
    inputs, bad = read_inputs([tmp_path, RESULTS / "N_alpha0.4", RESULTS / "D_alpha0.4",
                               tmp_path / "empty"])
    assert [i.kind for i in inputs] == ["fit", "parity-runs"]
    assert [p.name for p in inputs[1].runs] == ["N_alpha0.4", "D_alpha0.4"]
    assert [b.reason for b in bad] == ["no such file or folder"]
    # a demo's output folder: its JSON files and, beside them, a folder of runs
    out = tmp_path / "out"
    (out / "parity").mkdir(parents=True)
    (out / "parity" / "live_run").symlink_to(RESULTS / "D_alpha0.4")
    (out / "parity" / "parity.json").write_text((tmp_path / "fit.json").read_text())
    (out / "figure.png").write_bytes(b"\x89PNG")
    inputs, bad = read_inputs([out])
    assert [(i.kind, i.path.name) for i in inputs] == [("parity-runs", "parity"),
                                                       ("fit", "parity.json")]
    assert not bad


@given(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4), seeds)
def test_pointer_resolves_to_what_it_names(keys, seed):
    doc = value = float(np.random.default_rng(seed).normal())
    for k in reversed(keys):
        doc = {k: doc}
    assert resolve(doc, pointer(*keys)) == value


@given(st.floats(-5, 5), st.floats(0, 3), st.floats(-5, 5))
def test_agreement_says_where_the_prediction_lies(lo, width, t):
    hi = lo + width
    row = Row("α_N", "test", Cell((lo + hi) / 2), Cell(lo), Cell(hi), Cell(t))
    assert row.inside == (lo <= t <= hi)
    said = row.sentence
    if row.inside:
        assert said.endswith("lies within the interval")
    else:
        assert said.endswith(f"lies {'below' if t < lo else 'above'} the interval")


def test_agreement_of_several_rows_counts_and_names_the_furthest():
    rows = [Row("α_N", "a", Cell(0.39), Cell(0.37), Cell(0.41), Cell(0.40)),
            Row("α_D", "b", Cell(0.30), Cell(0.295), Cell(0.305), Cell(0.2857)),
            Row("α_S", "c", Cell(0.2), Cell(0.19), Cell(0.21), Cell(0.2857))]
    said = agreement(rows)
    assert said.startswith("1 of 3 intervals hold their prediction; the furthest: α_S = 0.2 ")
    assert agreement(rows[:1]) == ("α_N = 0.39 [0.37, 0.41]: the prediction 0.4 lies within "
                                   "the interval.")


@pytest.fixture(scope="module")
def token_files(tmp_path_factory):
    """Two ``quanta tokens analyze --json`` outputs of generated matrices: model sizes
    (the Pythia seven) and checkpoints."""
    d = tmp_path_factory.mktemp("tokens")
    return {"sizes": tokens_json(d, name="sizes"), "steps": tokens_json(d, *STEPS, name="steps")}


def _tokens_block(path):
    page = report.build([path])
    assert not page.unreadable, page.unreadable
    assert [s.key for s in page.sections] == ["tokens"]
    return page, page.sections[0].blocks[0]


def test_a_token_analysis_is_its_own_section_after_qdg(token_files, capsys):
    qdg_parity = RESULTS.parent / "qdg" / "parity" / "threshold_0.1.json"
    page = report.build([token_files["sizes"], qdg_parity])
    assert [s.key for s in page.sections] == ["qdg", "tokens"]
    block = page.sections[1].blocks[0]
    doc = json.loads(token_files["sizes"].read_text())
    est, truth = doc["estimates"], doc["truth"]
    expected = [(est[k]["value"], *est[k]["ci"], t) for k, t in (
        ("alpha_offset", truth["alpha"]), ("alpha_drops", truth["alpha"]),
        ("monogenic_fraction", truth["monogenic"]), ("alpha_gap", 0.0))]
    assert [(r.value.value, r.lower.value, r.upper.value, r.predicted)
            for r in block.rows] == expected
    held = sum(lo <= t <= hi for _, lo, hi, t in expected)
    assert block.sentence.startswith(f"{held} of 4 intervals hold their prediction")
    # mean loss, p(L), L·p(L), example curves; the fraction solved and the drops collapsed
    assert len(block.figures) == 4 and [len(f) for _, f in block.more] == [2]
    assert "Figure 11" not in " ".join(f.caption for f in block.figures)
    html = report.render(page)
    traced = {p: float(v) for p, v, _ in spans(html)}
    assert traced["/estimates/alpha_drops/value"] == est["alpha_drops"]["value"]
    assert traced["/truth/monogenic"] == truth["monogenic"]


def test_a_checkpoint_analysis_adds_the_heat_map(token_files):
    _, block = _tokens_block(token_files["steps"])
    assert len(block.figures) == 5 and "Figure 11" in block.figures[-1].caption
    assert "8 checkpoints" in block.title and "α = α_S/(1 − α_S)" in block.rows[0].what


def test_without_truth_the_two_alphas_are_set_against_each_other(token_files, tmp_path):
    doc = json.loads(token_files["sizes"].read_text())
    doc["truth"] = None                           # as a real model family's analysis
    src = tmp_path / "real.json"
    src.write_text(json.dumps(doc))
    _, block = _tokens_block(src)
    lo, hi = doc["estimates"]["alpha_gap"]["ci"]
    assert block.rows[-1].predicted == 0.0 and block.rows[-1].inside == (lo <= 0 <= hi)
    assert all(r.predicted is None and r.remark for r in block.rows[:3])
    assert block.sentence.startswith("α from where tokens drop, ")
    assert block.sentence.endswith("holds 0, as the model predicts." if lo <= 0 <= hi else
                                   "excludes 0: the two readings of α disagree.")


def test_a_figure_the_json_cannot_draw_is_named_not_dropped(token_files, tmp_path):
    doc = json.loads(token_files["steps"].read_text())
    del doc["distribution"]["counts"], doc["estimates"]["alpha_gap"]
    doc["heatmap"]["losses"] = []
    src = tmp_path / "older.json"
    src.write_text(json.dumps(doc))
    _, block = _tokens_block(src)
    assert len(block.figures) == 2                 # the mean loss and the example curves
    said = " ".join(block.notes)
    assert said.count("/distribution/counts is absent") == 2        # p(L) and L·p(L)
    assert "/heatmap/losses is empty" in said and "no /estimates/alpha_gap" in said
    assert [r.quantity for r in block.rows] == ["α (mean loss)", "α (drops)",
                                                "monogenic fraction"]


@pytest.mark.slow
def test_report_demo_reads_every_demo_file(tmp_path, capsys):
    """The demo's page, made from the demos of theory, simulate and tokens, a parity
    analysis where the parity demo writes its own, and the committed bias study: every
    input read, the fit of the loss table among the sections."""
    from quanta.commands import simulate, theory, tokens
    from quanta.report.demo import demo_report

    theory.demo(tmp_path)
    simulate.demo(tmp_path)
    tokens.demo(tmp_path)
    # the parity demo (a minute, training live) names its analyses after the runs
    (tmp_path / "parity").mkdir()
    assert cli.main(["parity", "analyze", str(RESULTS / "D_alpha0.4"), "--json",
                     str(tmp_path / "parity" / "cpu_checks.json")]) == 0
    written = demo_report(tmp_path)
    out = capsys.readouterr().out
    assert "not read" not in out
    html = (tmp_path / "report.html").read_text()
    assert written[-1] == tmp_path / "report.html"
    sections = ["predictions", "montecarlo", "fits", "parity", "qdg", "tokens"]
    assert [s for s in sections if f'id="{s}"' in html] == sections
    assert html.count("Per-token losses: ") == 2            # model sizes and checkpoints
    fit = json.loads((tmp_path / "fit_table.json").read_text())
    assert f'data-value="{fit["params"]["alpha"]}"' in html
    # the table follows the infinite-K law, so the fit recovers α/(α+1) at α = 0.4
    assert abs(fit["params"]["alpha"] - 0.4 / 1.4) < 0.005


def test_every_kind_the_report_draws_says_which_command_made_it():
    """The provenance footer names the command behind each input kind: every kind a section
    draws is in MADE_BY (two kinds added with their sections were missing)."""
    from quanta.report import SECTIONS
    from quanta.report.provenance import MADE_BY

    drawn = {kind for *_, blocks in SECTIONS for kind in blocks}
    assert drawn <= set(MADE_BY), drawn - set(MADE_BY)
