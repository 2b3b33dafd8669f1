"""The alternatives to a power-law tail that Clauset, Shalizi & Newman (2009, §5, Table 6.2)
tested, each fitted by maximum likelihood to the same tail s ≥ x_min, and the likelihood
ratio of the power law against each.

============================  =============================================================
alternative                   law on s ≥ x_min (t = s / x_min)
============================  =============================================================
``exponential``               P(S ≥ s) = exp(-lam (s - x_min))
``stretched_exponential``     P(S ≥ s) = exp(-mu (t^beta - 1))   (Weibull tail)
``lognormal``                 log-normal density truncated to s ≥ x_min
``power_law_cutoff``          density ∝ s^-alpha exp(-lam s)      (nests the power law)
============================  =============================================================

Discrete samples use the discrete versions: the probability of s is P(S ≥ s) - P(S ≥ s+1)
of the law above (the geometric law for the exponential), and s^-alpha exp(-lam s)
normalised by its sum over s ≥ x_min for the cutoff (as Clauset et al.'s discrete fits do).

The comparison is Vuong's test (1989): R = Σ_i (log p_pl(s_i) - log p_alt(s_i)) (R > 0
favours the power law), its normalised value R / (σ √n) with σ the standard deviation of
the pointwise differences, and the two-sided p-value erfc(|R| / (σ √(2n))). The power law
with cutoff nests the power law (lam = 0), so its p-value is that of the likelihood-ratio
test, 2|R| against χ² with one degree of freedom.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

ALTERNATIVES = ("exponential", "stretched_exponential", "lognormal", "power_law_cutoff")


@dataclass(frozen=True)
class Comparison:
    """The power law against one alternative on the same tail."""
    alternative: str
    params: dict           # the alternative's ML parameters
    loglik: float          # the alternative's log-likelihood
    R: float               # log-likelihood ratio, power law minus alternative
    normalized_R: float    # R / (sigma sqrt(n))
    p_value: float         # Vuong's two-sided p (nested: chi-squared, 1 dof)
    nested: bool

    @property
    def favours(self) -> str:
        """"power law", the alternative, or "neither" at p >= 0.1 (Clauset et al.'s cut)."""
        if not self.p_value < 0.1:
            return "neither"
        return "power law" if self.R > 0 else self.alternative


def compare_alternatives(tail, xmin, gamma, discrete, which=ALTERNATIVES):
    """Fit each alternative in ``which`` to ``tail`` (the samples ≥ xmin) and compare it with
    the power law of exponent ``gamma`` on the same tail."""
    t = np.asarray(tail, dtype=float)
    ll_pl = power_law_loglik(t, xmin, gamma, discrete)
    out = []
    for name in which:
        params, ll_i = FITTERS[name](t, xmin, discrete, gamma, ll_pl)
        out.append(vuong(name, params, ll_pl, ll_i, nested=name == "power_law_cutoff"))
    return out


def power_law_loglik(t, xmin, gamma, discrete):
    """Pointwise log-likelihood of the power-law tail."""
    if discrete:
        from fit import _tails

        return -gamma * np.log(t) - np.log(_tails.zeta(gamma, xmin))
    return np.log((gamma - 1.0) / xmin) - gamma * np.log(t / xmin)


def vuong(name, params, ll_pl, ll_alt, nested=False) -> Comparison:
    """Vuong's test of two non-nested models (or, ``nested``, the likelihood-ratio test)."""
    d = np.asarray(ll_pl) - np.asarray(ll_alt)
    n, R = d.size, float(d.sum())
    sigma = float(d.std())
    norm = R / (sigma * np.sqrt(n)) if sigma > 0 else 0.0
    if nested:
        p = float(special.chdtrc(1, 2 * abs(R)))
    else:
        p = float(special.erfc(abs(norm) / np.sqrt(2))) if sigma > 0 else 1.0
    return Comparison(name, {k: float(v) for k, v in params.items()},
                      float(np.sum(ll_alt)), R, float(norm), p, nested)


def _best(nll, starts, bounds):
    """The lowest of the bounded solves of ``nll`` from each start (finite values only);
    SLSQP, whose per-iteration cost is a small fraction of L-BFGS-B's in scipy 1.17."""
    best = None
    for x0 in starts:
        with np.errstate(all="ignore"):
            res = optimize.minimize(nll, x0, method="SLSQP", bounds=bounds,
                                    options={"maxiter": 300, "ftol": 1e-10})
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    return best.x


def _log_ccdf_diff(log_s0, log_s1):
    """log(S0 - S1) from log S0 > log S1: the log-probability of one discrete value."""
    return log_s0 + np.log(-np.expm1(log_s1 - log_s0))


# ------------------------------------------------------------------ exponential
def _exponential(t, xmin, discrete, *_):
    m = max(float(np.mean(t - xmin)), 1e-300)
    if discrete:
        lam = np.log1p(1.0 / m)
        return {"lam": lam}, np.log(-np.expm1(-lam)) - lam * (t - xmin)
    lam = 1.0 / m
    return {"lam": lam}, np.log(lam) - lam * (t - xmin)


# ------------------------------------------------------------------ stretched exponential
def _stretched_loglik(theta, t, xmin, discrete):
    """log P(S ≥ s) = -kappa (t^beta - 1)/beta: parametrised by kappa = mu·beta, so that the
    power-law limit (beta → 0, P(S ≥ s) → t^-kappa) lies inside the search, not at infinity."""
    kappa, beta = np.exp(theta[0]), theta[1]
    log_ccdf = lambda s: -kappa * np.expm1(beta * np.log(s / xmin)) / beta   # noqa: E731
    if discrete:
        return _log_ccdf_diff(log_ccdf(t), log_ccdf(t + 1))
    lt = np.log(t / xmin)
    return np.log(kappa / xmin) + (beta - 1) * lt + log_ccdf(t)


def _stretched(t, xmin, discrete, gamma, _):
    starts = [(np.log(max(gamma - 1, 1e-3)), b) for b in (1e-3, 0.3, 1.0)]
    nll = lambda th: -np.sum(_stretched_loglik(th, t, xmin, discrete))      # noqa: E731
    theta = _best(nll, starts, [(-30, 30), (1e-6, 20.0)])
    kappa, beta = np.exp(theta[0]), theta[1]
    return {"mu": kappa / beta, "beta": beta}, _stretched_loglik(theta, t, xmin, discrete)


# ------------------------------------------------------------------ log-normal
def _log_scaled_sf(z):
    """log P(Z ≥ z) + z²/2 for a standard normal Z, without overflow or cancellation."""
    z = np.asarray(z, dtype=float)
    pos = np.maximum(z, 0.0)
    neg = np.minimum(z, 0.0)
    return np.where(z > 0, np.log(0.5 * special.erfcx(pos / np.sqrt(2))),
                    special.log_ndtr(-neg) + 0.5 * neg * neg)


def _lognormal_loglik(theta, t, xmin, discrete):
    """Parametrised by the coefficients of log(s/x_min) in the exponent, b = mu'/sigma² and
    a = 1/(2 sigma²) (mu' = mu - log x_min): the power-law limit (a → 0) stays finite."""
    b, a = theta[0], np.exp(theta[1])
    sigma = 1.0 / np.sqrt(2 * a)
    z0 = -b * sigma                                       # (log x_min - mu) / sigma
    l0 = _log_scaled_sf(z0)

    def log_tail(s):                                      # log P(S ≥ s | S ≥ x_min)
        w = np.log(s / xmin)
        return _log_scaled_sf((w - b / (2 * a)) / sigma) - l0 - (a * w * w - b * w)
    if discrete:
        return _log_ccdf_diff(log_tail(t), log_tail(t + 1))
    w = np.log(t / xmin)
    return (-np.log(t * sigma * np.sqrt(2 * np.pi)) - (a * w * w - b * w) - l0
)


def _lognormal(t, xmin, discrete, gamma, _):
    w = np.log(t / xmin)
    s2 = max(float(w.var()), 1e-6)
    starts = [(1.0 - gamma, np.log(1e-4)), (float(w.mean()) / s2, np.log(0.5 / s2)),
              (0.0, np.log(0.5 / s2))]
    nll = lambda th: -np.sum(_lognormal_loglik(th, t, xmin, discrete))      # noqa: E731
    theta = _best(nll, starts, [(-50.0, 50.0), (np.log(1e-10), np.log(1e6))])
    b, a = theta[0], np.exp(theta[1])
    sigma2 = 1.0 / (2 * a)
    return {"mu": np.log(xmin) + b * sigma2, "sigma": np.sqrt(sigma2)}, \
        _lognormal_loglik(theta, t, xmin, discrete)


# ------------------------------------------------------------------ power law with cutoff
def log_expint(p, z):
    """log E_p(z) = log ∫_1^∞ t^-p e^(-z t) dt (z > 0, any real p), by quadrature of
    exp((1-p) s - z e^s) over s ≥ 0, taken relative to its maximum."""
    from scipy import integrate

    s_peak = max(np.log((1.0 - p) / z), 0.0) if p < 1 else 0.0
    top = (1.0 - p) * s_peak - z * np.exp(s_peak)
    s_end = max(np.log(max(1.0, 200.0 / z)), s_peak) + 2.0
    with warnings.catch_warnings():    # roundoff may stop it short of 1e-11
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        val, _ = integrate.quad(lambda s: np.exp((1.0 - p) * s - z * np.exp(s) - top), 0.0,
                                s_end, points=[s_peak] if 0 < s_peak < s_end else None,
                                limit=200, epsabs=0.0, epsrel=1e-11)
    return top + np.log(val)


#: direct terms of the discrete cutoff law's normalising sum before the integral takes over
DIRECT_TERMS = 2000


def _cutoff_log_norm(alpha, lam, xmin, discrete):
    """log of ∫ (or Σ, discrete) over s ≥ x_min of s^-alpha e^(-lam s)."""
    if not discrete:
        return (1.0 - alpha) * np.log(xmin) + log_expint(alpha, lam * xmin)
    k = xmin + np.arange(DIRECT_TERMS)
    terms = -alpha * np.log(k) - lam * k
    top = terms.max()
    m = xmin + DIRECT_TERMS                   # Euler–Maclaurin remainder Σ_{s ≥ m}
    f_m = np.exp(-alpha * np.log(m) - lam * m - top)
    rest = np.exp((1.0 - alpha) * np.log(m) + log_expint(alpha, lam * m) - top)
    rest += 0.5 * f_m + f_m * (alpha / m + lam) / 12.0
    return top + np.log(np.exp(terms - top).sum() + rest)


def _cutoff_loglik(theta, t, xmin, discrete):
    alpha, lam = theta[0], np.exp(theta[1]) / xmin
    return -alpha * np.log(t) - lam * t - _cutoff_log_norm(alpha, lam, xmin, discrete)


def _cutoff(t, xmin, discrete, gamma, pl_loglik_i):
    u = float(np.mean(t / xmin))
    starts = [(gamma, np.log(1e-6)), (gamma - 0.5, np.log(0.1 / u)), (1.0, np.log(1.0 / u))]
    nll = lambda th: -np.sum(_cutoff_loglik(th, t, xmin, discrete))         # noqa: E731
    theta = _best(nll, starts, [(-5.0, 20.0), (np.log(1e-12), np.log(1e3))])
    ll = _cutoff_loglik(theta, t, xmin, discrete)
    if ll.sum() < np.sum(pl_loglik_i):        # the nested law contains the power law
        return {"alpha": gamma, "lam": 0.0}, np.asarray(pl_loglik_i, dtype=float)
    return {"alpha": theta[0], "lam": np.exp(theta[1]) / xmin}, ll


FITTERS = {"exponential": _exponential, "stretched_exponential": _stretched,
           "lognormal": _lognormal, "power_law_cutoff": _cutoff}
