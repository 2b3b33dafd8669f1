"""Published scaling exponents (Epoch AI's literature review) against the quantization model.

Data: ``fit/data/epoch-scaling-laws-review.csv``, unchanged, is ``scaling-laws.csv`` of the
public repository ejmichaud/quantization-model (Michaud et al. 2023), which took it from Epoch
AI's literature review of published scaling laws (137 rows, one per fitted law). Three of its
25 columns have blank headers; they are the upper ends of the ranges whose lower ends are in
the column before them ("Compute range (FLOP)", "Data range (mixed)", "Size range
(parameters)"); :func:`load_literature` names them.

Figure 18 of the paper plots each paper's data exponent α_D against its parameter exponent α_N
beside the model's α_D = α_N/(α_N+1). The rows it uses are listed in :data:`FIGURE18_ROWS`,
each with the column that holds the exponent; :func:`figure18_points` checks every row's
scaling variable before reading it. One correction: for Ardalani et al. 2022 ("Understanding
Scaling Laws for Recommendation Models") the paper's notebook took row 122 (scaling variable
"Data", exponent 0.10) as α_N and row 123 ("Parameters", exponent 4.0) as α_D; the rows say
the opposite, so here α_N = 4.0 and α_D = 0.10 (``paper_alpha_N``/``paper_alpha_D`` keep what
the figure drew).
"""
from __future__ import annotations

from importlib import resources

import numpy as np

from common.errors import InputError

LITERATURE_FILE = "epoch-scaling-laws-review.csv"
UNNAMED = {"Unnamed: 17": "Compute range max (FLOP)", "Unnamed: 19": "Data range max",
           "Unnamed: 22": "Size range max (parameters)"}

#: (label, paper title, [(row of α_N, column, row of α_D, column), ...]); rows are 0-based
#: data rows of the CSV (spreadsheet row = index + 2).
FIGURE18_ROWS = [
    ("Rosenfeld et al. 2019", "A Constructive Prediction of the Generalization Error Across Scales",
     # bivariate laws: variable 1 = Parameters (exponent 1), variable 2 = Data (exponent 2)
     [(i, "Exponent 1", i, "Exponent 2") for i in range(9)]),
    ("Kaplan et al. 2020", "Scaling Laws for Neural Language Models",
     # row 12: L(N,D) = [(A/N)^(a/b) + B/D]^-b, a = α_N, b = α_D
     [(12, "Exponent 1", 12, "Exponent 2")]),
    ("Hoffmann et al. 2022", "Training Compute-Optimal Large Language Models",
     # row 36: L(N,D) = AN^-a + BD^-b + E
     [(36, "Exponent 1", 36, "Exponent 2")]),
    ("Ardalani et al. 2022", "Understanding Scaling Laws for Recommendation Models",
     # two univariate laws: row 123 is L(N) (Parameters), row 122 is L(D) (Data)
     [(123, "Exponent 1", 122, "Exponent 1")]),
    ("Gordon et al. 2021", "Data and Parameter Scaling Laws for Neural Machine Translation",
     # L(N,D) = [AN^(-a/b) + BD^-1]^b: N enters as N^-a, D as D^-b
     [(i, "Exponent 1", i, "Exponent 2") for i in (128, 129, 130)]),
    ("Droppo & Elibol 2021", "Scaling Laws for Acoustic Models",
     # two univariate laws: row 134 L(N) (Parameters), row 135 L(D) (Data)
     [(134, "Exponent 1", 135, "Exponent 1")]),
]
#: The paper whose two exponents Figure 18 swapped.
SWAPPED_IN_PAPER = "Ardalani et al. 2022"


def load_literature():
    """The literature-review table as a DataFrame, with its three blank headers named."""
    import pandas as pd

    with resources.files("fit").joinpath("data", LITERATURE_FILE).open("r") as fh:
        table = pd.read_csv(fh)
    return table.rename(columns=UNNAMED)


def _variable_of(row, column):
    """The scaling variable that the exponent in ``column`` of ``row`` belongs to."""
    return row["Scaling Variable 1"] if column == "Exponent 1" else row["Scaling Variable 2"]


def figure18_points(table=None):
    """One row per (α_N, α_D) pair of Figure 18, read from the table with each row checked.

    Columns: label, paper, task, row_N, row_D, alpha_N, alpha_D, paper_alpha_N,
    paper_alpha_D (what the paper's figure drew), swapped_in_paper.
    """
    import pandas as pd

    table = load_literature() if table is None else table
    out = []
    for label, paper, pairs in FIGURE18_ROWS:
        for rn, cn, rd, cd in pairs:
            row_n, row_d = table.iloc[rn], table.iloc[rd]
            for r, row in ((rn, row_n), (rd, row_d)):
                if row["Paper"] != paper:
                    raise InputError(f"literature table row {r}: expected paper {paper!r}, "
                                     f"found {row['Paper']!r}")
            if _variable_of(row_n, cn) != "Parameters" or _variable_of(row_d, cd) != "Data":
                raise InputError(f"literature table rows {rn}/{rd} ({label}): the scaling "
                                 f"variables are not Parameters/Data")
            aN, aD = abs(float(row_n[cn])), abs(float(row_d[cd]))
            swapped = label == SWAPPED_IN_PAPER
            out.append({"label": label, "paper": paper, "task": row_n["Task"],
                        "row_N": rn, "row_D": rd, "alpha_N": aN, "alpha_D": aD,
                        "paper_alpha_N": aD if swapped else aN,
                        "paper_alpha_D": aN if swapped else aD,
                        "swapped_in_paper": swapped})
    return pd.DataFrame(out)


def figure18_summary(points=None) -> dict:
    """Each published pair with the model's α_D(α_N) and the gap α_D − α_D(α_N)."""
    import theory

    points = figure18_points() if points is None else points
    rows = []
    for rec in points.to_dict("records"):
        pred = float(theory.alpha_D(rec["alpha_N"]))
        rows.append({**{k: rec[k] for k in ("label", "task", "row_N", "row_D", "alpha_N",
                                            "alpha_D", "swapped_in_paper")},
                     "alpha_D_model": pred, "gap": rec["alpha_D"] - pred})
    gaps = np.array([r["gap"] for r in rows])
    return {"points": rows, "n_points": len(rows), "median_gap": float(np.median(gaps)),
            "swapped_in_paper": SWAPPED_IN_PAPER,
            "source": "Epoch AI literature review via ejmichaud/quantization-model "
                      "scaling-laws.csv"}


CHINCHILLA_FILE = "chinchilla-svg-extracted.csv"


def load_chinchilla(drop_highest_loss=5):
    """Hoffmann et al. (2022) training runs as (N, D, C, loss), an example for the joint forms.

    ``fit/data/chinchilla-svg-extracted.csv``, unchanged, is ``data/svg_extracted_data.csv`` of
    the public repository epoch-research/analyzing-chinchilla (Besiroglu et al. 2024,
    "Chinchilla Scaling: A replication attempt"): 245 runs recovered from the vector graphics
    of Hoffmann et al.'s Figure 4, with model size N (parameters), training FLOP C and final
    loss (nats/token). Tokens D = C / (6N). The replication fits 240 runs, dropping the five
    with the highest loss (``drop_highest_loss``).
    """
    import pandas as pd

    with resources.files("fit").joinpath("data", CHINCHILLA_FILE).open("r") as fh:
        raw = pd.read_csv(fh)
    N = raw["Model Size"].to_numpy(dtype=float)
    C = raw["Training FLOP"].to_numpy(dtype=float)
    table = pd.DataFrame({"N": N, "D": C / (6.0 * N), "C": C, "loss": raw["loss"].to_numpy()})
    if drop_highest_loss:
        table = table.sort_values("loss").iloc[:len(table) - int(drop_highest_loss)]
    return table.reset_index(drop=True)
