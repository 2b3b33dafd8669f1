"""``quanta theory``: the model's predicted exponents and exact expected losses.

    quanta theory --alpha 0.4 [--tau 1] [--K 500] [--C 1] [--n 10 100 ...]
                  [--D 1e3 1e6 ...] [--S 1e3 ... --batch 20000 [--rule samples|steps]]
                  [--json FILE] [--plot FILE]

Losses use a = 0, b = 1, so each is the expected unlearned mass. K defaults to infinity
(JSON ``K`` null). ``--S`` needs ``--batch`` (no default: the batch sets the scale of the
steps axis, so a silent default would mislead). ``--C`` (parameters per quantum) enters
the compute-optimal prefactors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from quanta.io import (CommandError, add_output_args, add_resource_args, count, save_figure,
                       say, write_json)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "theory", help="predicted exponents and exact expected losses of the quantization model",
        description="Print the exponents alpha_N, alpha_D, alpha_S and the compute-optimal "
                    "exponents for a given alpha, and the exact expected loss (unlearned mass, "
                    "a=0, b=1) at each n, D or S given.")
    p.add_argument("--alpha", type=float, required=True,
                   help="the paper's alpha: frequencies p_k ∝ k^-(alpha+1)")
    p.add_argument("--tau", type=count(1), default=1, help="occurrences needed to learn a quantum (default 1)")
    p.add_argument("--K", type=count(1), default=None, help="number of quanta (default: infinite)")
    p.add_argument("--C", type=float, default=1.0, help="parameters per quantum (default 1)")
    p.add_argument("--n", type=float, nargs="+", default=[], metavar="n", help="quanta learned")
    p.add_argument("--D", type=float, nargs="+", default=[], metavar="D", help="samples (multi-epoch)")
    p.add_argument("--S", type=float, nargs="+", default=[], metavar="S", help="steps (single epoch)")
    p.add_argument("--batch", type=float, default=None, help="batch size for --S (required with --S)")
    p.add_argument("--rule", default="samples", choices=("samples", "steps"),
                   help="for --S: learned after tau samples (default) or tau distinct steps")
    add_output_args(p)
    add_resource_args(p)
    p.set_defaults(func=run)


def predictions(alpha, tau=1, K=None, C=1.0, n=(), D=(), S=(), batch=None, rule="samples") -> dict:
    """The JSON object of ``quanta theory``: exponents, compute optimum, exact losses."""
    import theory

    if len(S) and batch is None:
        raise CommandError("--S needs --batch (the batch size B; D = S·B samples)")
    theory.normalization(alpha, K)          # validates alpha and K up front
    opt = _compute_optimal(alpha, tau, C)

    def rows(x, loss):
        return [{"x": float(xi), "loss": float(li)} for xi, li in zip(x, np.atleast_1d(loss))]

    n, D, S = (np.asarray(v, dtype=float) for v in (n, D, S))
    none = dict.fromkeys(("N", "D", "L"))
    return {
        "alpha": alpha, "tau": tau, "K": K, "C": C, "batch": batch, "rule": rule,
        "alpha_N": theory.alpha_N(alpha), "alpha_D": theory.alpha_D(alpha),
        "alpha_S": theory.alpha_S(alpha),
        "compute_optimal": {**none, "coefficients": none} if opt is None else
        {"N": opt.N_exponent, "D": opt.D_exponent, "L": opt.L_exponent,
         "coefficients": {"N": opt.N_coef, "D": opt.D_coef, "L": opt.L_coef}},
        "loss_n": rows(n, theory.loss_n(n, alpha, K)) if n.size else [],
        "loss_D": rows(D, theory.expected_loss_D(D, alpha, tau, K)) if D.size else [],
        "loss_S": rows(S, theory.expected_loss_S(S, alpha, batch, tau, rule, K)) if S.size else [],
    }


def _compute_optimal(alpha, tau, C):
    """theory.compute_optimal, or None below theory's smallest α for infinite sums (the
    compute optimum is an infinite-K asymptote; the finite-K losses are still exact)."""
    import theory
    from theory.zipf import ALPHA_MIN

    return None if alpha < ALPHA_MIN else theory.compute_optimal(alpha, tau=tau, C=C)


def report(res: dict) -> str:
    """The predictions as a text table."""
    K = "infinite" if res["K"] is None else res["K"]
    co = res["compute_optimal"]
    lines = [f"alpha = {res['alpha']:g}  tau = {res['tau']}  K = {K}",
             f"alpha_N = {res['alpha_N']:.6g}  alpha_D = {res['alpha_D']:.6g}  "
             f"alpha_S = {res['alpha_S']:.6g}",
             "compute-optimal: none below alpha = 1e-4 (an infinite-K asymptote)"
             if co["N"] is None else
             f"compute-optimal (compute c = 6ND): N* ∝ c^{co['N']:.6g}  D* ∝ c^{co['D']:.6g}  "
             f"L* - L_inf ∝ c^-{co['L']:.6g}"]
    for key, name in (("loss_n", "n"), ("loss_D", "D"), ("loss_S", "S")):
        if res[key]:
            lines.append(f"{name:>12}  expected loss (unlearned mass)")
            lines += [f"{row['x']:>12.6g}  {row['loss']:.10g}" for row in res[key]]
    return "\n".join(lines)


def run(args) -> int:
    if args.S and args.batch is None:
        raise CommandError("--S needs --batch (the batch size B; D = S·B samples)")
    res = predictions(args.alpha, args.tau, args.K, args.C, args.n, args.D, args.S,
                      args.batch, args.rule)
    say(report(res), args.json)
    write_json(res, args.json)
    if args.plot:
        from theory.plots import plot_predictions

        axes = plot_predictions(args.alpha, args.tau, args.K, args.batch or 20_000)
        save_figure(axes[0].figure, args.plot)
    return 0


def demo(out_dir: Path) -> list[Path]:
    """Predicted curves and exponents at alpha = 0.4: theory.json and theory.png."""
    from theory.plots import plot_predictions

    out_dir = Path(out_dir)
    res = predictions(0.4, tau=1, K=None, n=np.logspace(0, 8, 9), D=np.logspace(0, 15, 16),
                      S=np.logspace(0, 8, 9), batch=20_000)
    json_path, png_path = out_dir / "theory.json", out_dir / "theory.png"
    write_json(res, json_path)
    axes = plot_predictions(0.4, tau=1, K=None, batch=20_000)
    save_figure(axes[0].figure, png_path)
    return [json_path, png_path]
