"""The public Monte Carlo: validate, seed, call the kernel, wrap the result."""
from __future__ import annotations

import dataclasses
import math
import operator
import time
from typing import Callable

import numba
import numpy as np

from common import resources
from common.errors import InputError, ResourceError
from common.results import Result, jsonable, percentile_interval
import theory
from simulate import _kernels
from theory._checks import check_alpha, check_positive  # α and C as theory checks them

REGIMES = ("D", "S", "N")
RULES = ("samples", "steps")


@dataclasses.dataclass(frozen=True)
class SimulationResult(Result):
    """Monte Carlo of one configuration over a grid ``x`` (D, S or N values).

    ``losses`` is reps × points (one row per realization, the same realization along a row),
    ``mean`` and ``sem`` summarise it, ``theory`` is ``theory``'s exact expectation at ``x``
    (NaN where no closed form exists), ``p_learned[j, k-1]`` the fraction of realizations
    that learned quantum k at ``x[j]`` (None when not asked for, or when points × K
    exceeds ``P_LEARNED_MAX``).
    """

    config: dict
    x: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    losses: np.ndarray
    theory: np.ndarray
    p_learned: np.ndarray | None

    @property
    def theory_exponent(self) -> float:
        """The predicted exponent: α for N, α/(α+1) for D and S."""
        alpha = self.config["alpha"]
        return theory.alpha_N(alpha) if self.config["regime"] == "N" else theory.alpha_D(alpha)

    def asymptotic_window(self) -> tuple[float, float]:
        """Default fitting window: above the pre-asymptotic start (x ≥ 100τ samples; for
        the steps rule ≥ 100τ steps, where the local exponent is within 0.5 % of its limit)
        and a decade below the cutoff where the loss flattens: τ/p_n samples for the last
        quantum that can be learned (n = K, or ⌊N/C⌋ with a capacity N; p_n normalised over
        all K); [100C, nC/10] for N, n = K or, noisy, the quanta seen τ times in D samples,
        (D p_1/τ)^(1/(α+1))."""
        cfg = self.config
        K, tau, C, alpha = cfg["K"], cfg["tau"], cfg["C"], cfg["alpha"]
        if cfg["regime"] == "N":
            n = K
            if cfg["noisy"]:
                p1 = float(theory.frequencies(alpha, K, 1))
                n = min(K, max(1.0, (cfg["D"] * p1 / tau) ** (1.0 / (alpha + 1.0))))
            return 100.0 * C, 0.1 * n * C
        n = max(1, learnable(cfg["N"], C, K))
        cutoff = tau / float(theory.frequencies(alpha, K, n))
        lo = 100.0 * tau
        if cfg["regime"] == "S":
            cutoff, lo = cutoff / cfg["batch"], lo / cfg["batch"]
            if cfg["rule"] == "steps":
                lo = max(lo, 100.0 * tau)
        return lo, 0.1 * cutoff

    def truncation_offset(self) -> float:
        """ε_K (b − a): the loss the cut at K removes, Σ_{k>K} k^-(α+1) / H_K(α+1) times
        (b − a). Cutting the Zipf law at K makes L − L∞ = A x^-slope − ε_K(b − a) below the
        cutoff, so adding it back gives the infinite-K exponent; 0 for per-quantum a, b."""
        cfg = self.config
        a, b = cfg["a"], cfg["b"]
        if not constant_losses(cfg):
            return 0.0
        return theory.truncation_offset(cfg["alpha"], cfg["K"]) * (float(b) - float(a))

    def exponent(self, x_min=None, x_max=None, *, truncation=True) -> float:
        """−slope of log(mean − L∞ [+ ε_K]) against log x by least squares over
        [x_min, x_max] (default: ``asymptotic_window()``, which must hold 3 grid points).

        ``truncation=True`` adds back ε_K (see ``truncation_offset``) and so measures the
        infinite-K exponent; ``False`` gives the raw slope a finite-K experiment would fit.
        """
        sel = self._window(x_min, x_max)
        slope = self._slopes(self.mean, sel, truncation)
        if not np.isfinite(slope):
            raise InputError("x_max: the loss reaches L∞ inside the window; lower x_max")
        return float(slope)

    def _window(self, x_min=None, x_max=None) -> np.ndarray:
        """The grid points in [x_min, x_max] (default: the asymptotic window)."""
        lo, hi = self.asymptotic_window()
        lo = lo if x_min is None else x_min
        hi = hi if x_max is None else x_max
        x = np.asarray(self.x, float)
        sel = (x >= lo) & (x <= hi)
        if x_min is None and x_max is None and sel.sum() < 3:
            raise InputError(f"the asymptotic window [{lo:g}, {hi:g}] holds {sel.sum()} grid "
                             "points; need 3 (widen the grid or pass x_min, x_max)")
        if sel.sum() < 2:
            raise InputError(f"x_min/x_max: fewer than 2 grid points in [{lo:g}, {hi:g}]")
        return sel

    def _slopes(self, curves, sel, truncation: bool):
        """−slope of log(curve − L∞ [+ ε_K]) on log x over the points ``sel``, for each
        row of ``curves`` (NaN for a row that reaches L∞ there)."""
        y = np.asarray(curves, float)[..., sel] - self.config["loss_infinity"]
        if truncation:
            y = y + self.truncation_offset()
        u = np.log(np.asarray(self.x, float)[sel])
        uc = u - u.mean()
        positive = np.all(y > 0, axis=-1)
        ly = np.log(np.where(y > 0, y, 1.0))
        slope = ((ly - ly.mean(axis=-1, keepdims=True)) @ uc) / (uc @ uc)
        return np.where(positive, -slope, np.nan)

    # ------------------------------------------------------------ the result protocol
    @property
    def params(self) -> dict:
        """``exponent`` (fitted over the asymptotic window, ε_K added back) and
        ``exponent_raw`` (without ε_K), NaN where the window holds too few grid points or
        the loss reaches L∞ in it; ``theory_exponent`` (predicted); ``loss_infinity``."""
        return {"exponent": self._exponent_or_nan(True),
                "exponent_raw": self._exponent_or_nan(False),
                "theory_exponent": float(self.theory_exponent),
                "loss_infinity": float(self.config["loss_infinity"])}

    def _exponent_or_nan(self, truncation: bool) -> float:
        try:
            return self.exponent(truncation=truncation)
        except InputError:
            return float("nan")

    def _bounds(self, level: float) -> dict:
        """Percentile intervals of the fitted exponents from a bootstrap over the
        realizations (i.i.d. by construction): ``N_BOOTSTRAP`` resamples of the rows of
        ``losses``, seeded by the run's seed; none with one realization or no window.
        They hold the Monte Carlo noise only, not the window's pre-asymptotic bias (the
        local exponent is within 0.5 % of its limit there, see ``asymptotic_window``)."""
        reps = self.losses.shape[0]
        try:
            sel = self._window()
        except InputError:
            return {}
        if reps < 2:
            return {}
        rng = np.random.default_rng([int(self.config["seed"]), BOOTSTRAP_STREAM])
        means = np.concatenate([                    # (100 × reps) weights at a time
            rng.multinomial(reps, np.full(reps, 1.0 / reps), size=min(100, N_BOOTSTRAP - b))
            @ self.losses / reps for b in range(0, N_BOOTSTRAP, 100)])
        return {name: percentile_interval(self._slopes(means, sel, truncation), level)
                for name, truncation in (("exponent", True), ("exponent_raw", False))
                if np.isfinite(self._exponent_or_nan(truncation))}

    def summary(self) -> str:
        """The simulated points against theory, and the fitted exponent, as a text table."""
        cfg = self.config
        lines = [f"regime {cfg['regime']}: alpha = {cfg['alpha']:g}, tau = {cfg['tau']}, "
                 f"K = {cfg['K']:,}, {cfg['reps']} realizations, seed {cfg['seed']}",
                 f"{'x':>14} {'mean':>12} {'sem':>10} {'theory':>12}"]
        lines += [f"{x:14.6g} {m:12.6g} {s:10.3g} {t:12.6g}"
                  for x, m, s, t in zip(self.x, self.mean, self.sem, self.theory)]
        lo, hi = self.asymptotic_window()
        exp = self.params["exponent"]
        if np.isfinite(exp):
            ci = self._bounds(0.95).get("exponent")
            band = "" if ci is None else f" [95%: {ci[0]:.4f}, {ci[1]:.4f}]"
            lines.append(f"exponent {exp:.4f}{band} (fitted over {lo:.3g} … {hi:.3g}); "
                         f"predicted {self.theory_exponent:.4f}")
        else:
            lines.append(f"exponent: fewer than 3 grid points in the asymptotic window "
                         f"{lo:.3g} … {hi:.3g}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """What ``quanta simulate --json`` writes: config, per-point mean/sem/theory, the
        fitted and predicted exponents, the fitting window and the exponents' 95 %
        bootstrap intervals (``ci``)."""
        params = self.params
        points = [dict(x=x, mean=m, sem=s, theory=t)
                  for x, m, s, t in zip(self.x, self.mean, self.sem, self.theory)]
        return jsonable(dict(config=self.config, points=points, exponent=params["exponent"],
                             theory_exponent=params["theory_exponent"],
                             exponent_window=list(self.asymptotic_window()),
                             exponent_raw=params["exponent_raw"],
                             ci={k: list(v) for k, v in self._bounds(0.95).items()}))

    def plot(self, ax=None):
        """Simulated mean loss against theory (``simulate.plots.plot_loss``)."""
        from simulate.plots import plot_loss

        return plot_loss(self, ax=ax)


#: bootstrap resamples of the realizations behind ``SimulationResult.conf_int``
N_BOOTSTRAP = 1000
#: second word of the bootstrap's seed, [run seed, BOOTSTRAP_STREAM]: a stream apart from
#: the realizations' own (``_states`` spawns from the run seed alone)
BOOTSTRAP_STREAM = 0xB007


def capacity(N, C) -> np.ndarray:
    """n = ⌊N/C⌋ quanta as integers (``theory.capacity``: 7/0.07 is 100, not 99), at most
    2^62 (more than any K: a cast of a larger n to int64 would wrap to a negative count)."""
    return np.minimum(theory.capacity(N, C), 2.0**62).astype(np.int64)


def learnable(N, C, K) -> int:
    """How many of the K quanta a capacity N can hold: ⌊N/C⌋ at most K (K when N is None)."""
    return K if N is None else min(K, int(capacity(N, C)))


def constant_losses(config: dict) -> bool:
    """Whether the config's a and b are constants (per-quantum ones are stored by name)."""
    return isinstance(config["a"], float) and isinstance(config["b"], float)


#: The data kernel holds K·τ occurrence clocks per thread; above this it refuses.
MAX_CLOCKS = 100_000_000
#: Every kernel holds arrays of K numbers (some per thread); above this K is refused.
MAX_QUANTA = 100_000_000

#: p_learned is kept when points × K is at most this. Each worker thread keeps a
#: points × K int32 table and buffers max(K, CODE_BUFFER) learned quanta between flushes
#: (16 bytes each, with the scratch of the flush); fewer threads run where these would
#: exceed P_TABLE_BUDGET bytes in all.
P_LEARNED_MAX = 20_000_000
P_TABLE_BUDGET = 1 << 29
CODE_BUFFER = 1 << 20


def _int(value, name: str, low: int) -> int:
    """An integer argument (an integral float too) of at least ``low``."""
    try:
        out = operator.index(value)
    except TypeError:
        if not (isinstance(value, float) and value.is_integer()):
            raise InputError(f"{name} must be an integer ≥ {low}, got {value!r}") from None
        out = int(value)
    if out < low:
        raise InputError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return out


def _check_grid(x, regime: str) -> np.ndarray:
    """The grid x as a 1-d array of finite values ≥ 1 (int64 counters but for N)."""
    try:
        x = np.atleast_1d(np.asarray(x, float))
    except (TypeError, ValueError):
        x = np.empty(0)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)) or np.any(x < 1):
        raise InputError(f"x: need a non-empty 1-d grid of finite {regime} values ≥ 1")
    if np.any(x > 2.0**62):
        raise InputError(f"x: {regime} values above 2^62 do not fit the int64 counters")
    return np.round(x).astype(np.int64) if regime != "N" else x


#: Realizations per spawned seed: chunk c = realizations c·SEED_CHUNK, … draws its states
#: (4 × uint64 each) from child c of SeedSequence(seed). Fixed, so that realization r gets
#: the same numbers whatever the thread count or the number of realizations.
SEED_CHUNK = 64


def _states(seed, reps: int, start: int = 0) -> np.ndarray:
    """Generator state (4 × uint64) of realizations start, …, start + reps − 1, chunk by
    chunk from the children of SeedSequence(seed) (what its ``spawn`` gives: child c has
    spawn key (c,)): one child per SEED_CHUNK realizations, because a spawn per
    realization cost more than the kernel's realizations at small sizes."""
    first, stop = start // SEED_CHUNK, -(-(start + reps) // SEED_CHUNK)
    words = np.concatenate([
        np.random.SeedSequence(seed, spawn_key=(c,)).generate_state(4 * SEED_CHUNK, np.uint64)
        for c in range(first, stop)])
    offset = start - first * SEED_CHUNK
    return words[4 * offset:4 * (offset + reps)].reshape(reps, 4)


def first_window(x_max: float) -> float:
    """Where the data kernel's first window of Poisson time ends (``_kernels._window_end``:
    past x_max by 10 standard deviations). Any end gives the same law; a test shortens it
    to exercise the later windows."""
    return float(_kernels._window_end(x_max))


def _workers(want_p: bool, points: int, K: int) -> int:
    """Numba's thread count, lowered so that the per-worker p_learned tables and code
    buffers fit P_TABLE_BUDGET."""
    threads = numba.get_num_threads()
    if not want_p:
        return threads
    per_worker = 4 * points * K + 16 * max(K, CODE_BUFFER)
    return max(1, min(threads, P_TABLE_BUDGET // per_worker))


def _call_kernel(*args):
    """The kernel. Under NUMBA_DISABLE_JIT (coverage runs) it runs as Python: its
    np.random calls then hit NumPy's global state, saved and restored here, and the
    generator's uint64 arithmetic wraps with NumPy overflow warnings, silenced here."""
    if not numba.config.DISABLE_JIT:
        return _kernels._simulate(*args)
    state = np.random.get_state()
    try:
        with np.errstate(over="ignore"):
            return _kernels._simulate(*args)
    finally:
        np.random.set_state(state)


def _theory(spec: "RunSpec", x) -> np.ndarray:
    """theory's exact expectation at x (NaN where it has no closed form)."""
    alpha, tau, K, a, b, C = spec.alpha, spec.tau, spec.K, spec.a, spec.b, spec.C
    if spec.regime == "N":  # the simulated learner holds whole quanta: n = ⌊N/C⌋
        if spec.noisy:      # choosing from noisy counts: no closed form
            return np.full(x.size, np.nan)
        return np.asarray(theory.loss_n(capacity(x, C), alpha, K=K, a=a, b=b), float)
    if spec.N is not None:
        if spec.regime == "S" and spec.rule == "steps":
            # quanta beyond the capacity are never learned: as if learning them cost
            # nothing, a_k = b_k for k > n, which the steps-rule expectation takes as arrays
            n = int(capacity(spec.N, C))
            a_eff = np.where(np.arange(1, K + 1) <= n, spec.a_k, spec.b_k)
            return np.asarray(theory.expected_loss_S(x, alpha, spec.batch, tau=tau,
                                                     rule=spec.rule, K=K, a=a_eff,
                                                     b=spec.b_k), float)
        size = x * spec.batch if spec.regime == "S" else x
        return np.asarray(theory.expected_loss_ND(spec.N, size, alpha, C=C, tau=tau, K=K,
                                                  a=a, b=b), float)
    if spec.regime == "D":
        return np.asarray(theory.expected_loss_D(x, alpha, tau=tau, K=K, a=a, b=b), float)
    return np.asarray(theory.expected_loss_S(x, alpha, spec.batch, tau=tau, rule=spec.rule,
                                             K=K, a=a, b=b), float)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """The arguments of one :func:`run`, checked and normalised by :func:`check_run`."""

    regime: str
    alpha: float
    x: np.ndarray            # the grid as given: int64 for D and S, float for N
    tau: int
    K: int
    batch: int | None
    rule: str
    C: float
    reps: int
    seed: int                # a fresh entropy when run was given seed=None
    a: object                # the per-quantum losses as given (scalar, array, callable)
    b: object
    a_k: np.ndarray          # … and as their K values
    b_k: np.ndarray
    noisy: bool
    N: float | None
    D: int | None

    @property
    def uses_clocks(self) -> bool:
        """Whether the data kernel runs (``_uses_clocks``)."""
        return _uses_clocks(self.regime, self.rule)


def _uses_clocks(regime: str, rule: str) -> bool:
    """Whether a run counts samples with the data kernel's occurrence clocks (D, and S with
    the samples rule; not the steps rule, not N)."""
    return regime == "D" or (regime == "S" and rule == "samples")


def _check_applicable(regime, rule, batch, C, tau, noisy, N, D) -> None:
    """Refuse an option that the regime would not read (a silent no-op otherwise) or that
    it needs and lacks."""
    if regime == "S" and batch is None:
        raise InputError("batch is required for regime 'S'")
    if noisy and regime != "N":
        raise InputError("noisy applies to regime 'N' only")
    if rule != "samples" and regime != "S":
        raise InputError(f"rule applies to regime 'S' only (regime {regime!r} learns at the "
                         "τ-th sample)")
    if batch is not None and regime != "S":
        raise InputError(f"batch applies to regime 'S' only, not {regime!r}")
    if C != 1.0 and regime != "N" and N is None:
        raise InputError("C (parameters per quantum) needs a capacity: regime 'N' or N=")
    if tau != 1 and regime == "N" and not noisy:
        raise InputError("tau: the plain N learner holds the ⌊N/C⌋ most frequent quanta "
                         "whatever their samples; tau applies with noisy=True")
    if D is not None and not noisy:
        raise InputError("D (training samples) applies to noisy=True only; the grid is D "
                         "in regime 'D'")
    if regime == "N" and noisy and D is None:
        raise InputError("D (training samples) is required for noisy=True")
    if N is not None and regime == "N":
        raise InputError("N is the grid in regime 'N'; pass it as x")


def _check_capacity(N):
    """The capacity N of regimes D and S: None or a finite number ≥ 0."""
    if N is None:
        return None
    try:
        value = float(N) if np.isscalar(N) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"N must be a finite number ≥ 0, got {N!r}")
    return N


def _check_size(regime, rule, x, batch, K, tau) -> None:
    """Refuse a run whose per-quantum arrays, sample counters or occurrence clocks would not
    fit, before anything is allocated."""
    if K > MAX_QUANTA:
        raise ResourceError(f"K = {K:,} quanta exceed {MAX_QUANTA:,} (several arrays of 8 "
                            "bytes per quantum, some per thread); lower K")
    if not _uses_clocks(regime, rule):
        return
    if float(x.max()) * float(batch or 1) > 2.0**62:
        raise InputError("x: S·batch above 2^62 samples does not fit the counters")
    if K * tau > MAX_CLOCKS:
        raise ResourceError(f"K·tau = {K * tau:,} clocks exceed {MAX_CLOCKS:,} (about 40 "
                            "bytes each per thread); lower K or tau")


def _check_seed(seed) -> int:
    """The seed as an int; None draws a fresh one from the OS (recorded in the config)."""
    try:
        sequence = np.random.SeedSequence(seed)
    except (TypeError, ValueError):
        raise InputError(f"seed must be None or an integer ≥ 0, got {seed!r}") from None
    return int(sequence.entropy) if seed is None else seed


def check_run(regime, alpha, x, *, tau=1, K=100_000, batch=None, rule="samples", C=1.0,
              reps=1000, seed=0, a=0.0, b=1.0, noisy=False, N=None, D=None) -> RunSpec:
    """Every argument of :func:`run` checked (an ``InputError`` naming the argument) and
    normalised, before anything is allocated or drawn."""
    if regime not in REGIMES:
        raise InputError(f"regime must be one of {REGIMES}, got {regime!r}")
    if rule not in RULES:
        raise InputError(f"rule must be one of {RULES}, got {rule!r}")
    alpha, C = check_alpha(alpha), check_positive(C, "C")
    tau, K, reps = _int(tau, "tau", 1), _int(K, "K", 1), _int(reps, "reps", 1)
    if regime == "S" and batch is not None:
        batch = _int(batch, "batch", 1)
    _check_applicable(regime, rule, batch, C, tau, noisy, N, D)
    if D is not None:
        D = _int(D, "D", 0)
        if D > 2**62:
            raise InputError(f"D must be at most 2^62, got {D}")
    xs = _check_grid(x, regime)
    _check_size(regime, rule, xs, batch, K, tau)
    # the losses (reps × points, and two copies on the way) and the generator states
    resources.check_memory(reps * (24.0 * xs.size + 32.0),
                           f"{reps:,} realizations over {xs.size:,} grid points",
                           "lower reps (--reps) or the number of grid points (--points)")
    return RunSpec(regime=regime, alpha=alpha, x=xs, tau=tau, K=K, batch=batch, rule=rule,
                   C=C, reps=reps, seed=_check_seed(seed), a=a, b=b,
                   a_k=theory.per_quantum(a, K, "a"), b_k=theory.per_quantum(b, K, "b"),
                   noisy=bool(noisy), N=_check_capacity(N), D=D)


def _quanta(spec: RunSpec):
    """The frequencies p, their reverse cumulative sums sf (sf[K] = 0), the weights
    w = p (b − a) of the loss above L∞, and L∞ = Σ p a."""
    K = spec.K
    p = np.asarray(theory.frequencies(spec.alpha, K), float)
    if not p[-1] > 0:
        raise InputError(f"alpha = {spec.alpha:g} with K = {K}: the rarest quanta's "
                         "frequencies underflow to 0; lower alpha or K")
    sf = np.zeros(K + 1)
    sf[:K] = np.cumsum(p[::-1])[::-1]
    return p, sf, p * (spec.b_k - spec.a_k), float(np.sum(p * spec.a_k))


def _kernel_mode(spec: RunSpec, grid):
    """The kernel's mode and its grid: samples (D, or S·batch), steps, or numbers of quanta
    ⌊N/C⌋ for the noisy N learner."""
    if spec.regime == "N":
        return _kernels.MODE_NOISY_N, capacity(grid, spec.C)
    if not spec.uses_clocks:
        return _kernels.MODE_STEPS, grid
    return _kernels.MODE_SAMPLES, grid * (spec.batch if spec.regime == "S" else 1)


def _realizations(spec: RunSpec, grid, p, sf, w, want_p, progress=None):
    """Every realization's loss above L∞ at the sorted distinct grid (reps × points) and, if
    ``want_p``, the learned fractions (points × K; else None); with ``progress``, block by
    block (:func:`_in_blocks`)."""
    if spec.regime == "N" and not spec.noisy:
        return _plain_n(w, capacity(grid, spec.C), spec.reps, want_p)
    mode, kx = _kernel_mode(spec, grid)
    kx = np.ascontiguousarray(kx, np.int64)

    def block(start: int, reps: int):
        out, learned = _call_kernel(mode, p, sf, w, kx, spec.tau, int(spec.batch or 1),
                                    learnable(spec.N, spec.C, spec.K), int(spec.D or 0),
                                    _states(spec.seed, reps, start), want_p,
                                    _workers(want_p, grid.size, spec.K), CODE_BUFFER,
                                    first_window(float(kx[-1])))
        return out, (learned if want_p else None)

    if progress is None or spec.reps < 4 * PROGRESS_FIRST:
        return block(0, spec.reps)
    return _in_blocks(block, spec.reps, progress)


#: realizations in the first (warm-up) and second (timed) blocks of a run with progress
PROGRESS_FIRST = 16
#: a run with progress whose rest takes less than this (seconds) runs it in one block;
#: a longer one in blocks of about PROGRESS_BLOCK_S (or a hundredth of the run)
PROGRESS_MIN_S = 10.0
PROGRESS_BLOCK_S = 2.0


def _in_blocks(block, reps: int, progress):
    """Run ``block(start, n)`` over all realizations: a warm-up block (the kernel's first
    call loads it), a timed one, then the rest at once if it is short (PROGRESS_MIN_S) or
    else in blocks of about PROGRESS_BLOCK_S, calling ``progress(done, reps,
    seconds_per_realization)`` after each (it may raise to stop the run). The numbers equal
    one call's: each realization has its own generator state, and the learned fractions
    are recombined from their integer counts."""
    losses, counts, done, per_rep = [], None, 0, None
    while done < reps:
        if per_rep is None:
            n = PROGRESS_FIRST
        elif per_rep * (reps - done) < PROGRESS_MIN_S:
            n = reps - done
        else:
            n = int(max(PROGRESS_FIRST, PROGRESS_BLOCK_S / per_rep, reps / 100))
        n = min(n, reps - done)
        t0 = time.perf_counter()
        out, learned = block(done, n)
        if done > 0 or n == reps:     # the warm-up block is not timed
            per_rep = (time.perf_counter() - t0) / n
        losses.append(out)
        if learned is not None:
            c = np.rint(learned * n)
            counts = c if counts is None else counts + c
        done += n
        if per_rep is not None:
            progress(done, reps, per_rep)
    return np.concatenate(losses), (None if counts is None else counts / reps)


def _result(spec: RunSpec, losses, learned, loss_inf: float) -> SimulationResult:
    """The losses (reps × the grid as given) summarised, with the config and theory."""
    x = spec.x.astype(float)
    config = dict(regime=spec.regime, alpha=spec.alpha, tau=spec.tau, K=spec.K,
                  batch=spec.batch, rule=spec.rule, C=spec.C, reps=spec.reps, seed=spec.seed,
                  a=_config_value(spec.a), b=_config_value(spec.b), noisy=spec.noisy,
                  N=spec.N, D=spec.D, loss_infinity=loss_inf)
    mean = losses.mean(axis=0)
    sem = (losses.std(axis=0, ddof=1) / math.sqrt(spec.reps) if spec.reps > 1
           else np.full(losses.shape[1], np.nan))
    exact = np.broadcast_to(_theory(spec, x), x.shape).copy()
    return SimulationResult(config=config, x=x, mean=mean, sem=sem, losses=losses,
                            theory=exact, p_learned=learned)


def run(regime, alpha, x, *, tau=1, K=100_000, batch=None, rule="samples", C=1.0,
        reps=1000, seed=0, a=0.0, b=1.0, noisy=False, N=None, D=None,
        p_learned=True, progress: Callable[[int, int, float], None] | None = None
        ) -> SimulationResult:
    """Monte Carlo of Zipfian quanta learning over a grid x of D, S or N values.

    - ``"D"``: D samples (multi-epoch) from Zipf(α+1) over K quanta; quantum k is learned
      once seen τ times. With ``N``, only quanta k ≤ ⌊N/C⌋ fit (capacity).
    - ``"S"``: S steps of ``batch`` fresh samples; ``rule="samples"`` learns at the τ-th
      occurrence, ``rule="steps"`` once present in τ distinct steps.
    - ``"N"``: capacity n = ⌊N/C⌋. Plain: the n most frequent quanta (deterministic).
      ``noisy=True`` (needs ``D``): the n quanta seen most often in D samples, among those
      seen ≥ τ times.

    Every grid point of a realization comes from the same sample sequence, so one
    realization gives the whole curve. Each realization has its own generator state,
    derived from ``seed`` (``_states``): the same seed gives the same numbers whatever the
    number of threads.
    ``p_learned=False`` skips the per-quantum learned fractions (a points × K table;
    up to a quarter of the data kernel's time at K = 10^5) and leaves them None; the losses
    are the same numbers either way.
    ``progress(done, reps, seconds_per_realization)``, if given, is called as blocks of
    realizations finish (from the second block on, once the time per realization is
    measured); it may raise to stop a run that would take too long. The numbers are the
    same as without it.
    """
    spec = check_run(regime, alpha, x, tau=tau, K=K, batch=batch, rule=rule, C=C,
                     reps=reps, seed=seed, a=a, b=b, noisy=noisy, N=N, D=D)
    p, sf, w, loss_inf = _quanta(spec)
    grid, inverse = np.unique(spec.x, return_inverse=True)
    want_p = bool(p_learned) and grid.size * spec.K <= P_LEARNED_MAX
    losses, learned = _realizations(spec, grid, p, sf, w, want_p, progress)
    losses = losses + loss_inf
    if not np.array_equal(inverse, np.arange(spec.x.size)):  # repeated or unsorted grid
        losses = losses[:, inverse]
        learned = learned[inverse] if learned is not None else None
    return _result(spec, losses, learned, loss_inf)


def _config_value(v):
    """a, b as stored in the config: scalars as floats, arrays/callables by description."""
    if callable(v):
        return getattr(v, "__name__", "callable")
    arr = np.asarray(v)
    return float(arr) if arr.ndim == 0 else "per-quantum array"


def _plain_n(w, n_grid, reps, want_p):
    """The plain capacity model: the ⌊N/C⌋ most frequent quanta are learned, every
    realization alike (the loss above L∞ is the w-mass of the rest)."""
    K = w.size
    suffix = np.concatenate([np.cumsum(w[::-1])[::-1], [0.0]])
    row = suffix[np.minimum(n_grid, K)]
    losses = np.broadcast_to(row, (reps, row.size)).copy()
    p_learned = None
    if want_p:
        p_learned = (np.arange(K)[None, :] < n_grid[:, None]).astype(float)
    return losses, p_learned
