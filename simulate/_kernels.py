"""Numba kernels of the Monte Carlo: arrays and scalars in, arrays out.

Conventions shared by every kernel (0-based index i is quantum k = i + 1):

- ``p[i]`` the frequencies, ``sf[i] = Σ_{i' ≥ i} p[i']`` their reverse cumulative sum
  (``sf[K] = 0``), summed from the rare end so that tail masses keep full precision;
- ``x`` the grid (samples, steps or numbers of quanta), non-decreasing int64;
- ``learned_at[i]`` (step and noisy-N kernels): the first grid index at which quantum i
  is learned (``m`` = never); the data kernel tallies in time order instead;
- realizations run in parallel (``prange``), each with its own generator state ``states[r]``
  (xoshiro256**, seeded from ``SeedSequence.spawn``; large-mean binomials and Poisson
  totals use Numba's BTPE and PTRS, whose per-thread generator is reseeded from the same
  state at the start of each realization). Realization r gets the same numbers whatever
  the thread count.

Every draw is exact (no normal or Poisson approximation of a count).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, uint64

MODE_SAMPLES, MODE_STEPS, MODE_NOISY_N = 0, 1, 2


# --- generator: xoshiro256** (Blackman & Vigna), 4 × uint64 of state per realization ----

@njit(cache=True, inline="always")
def _rotl(v, k):
    return (v << uint64(k)) | (v >> uint64(64 - k))


@njit(cache=True, inline="always")
def _next(s):
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    result = _rotl(s1 * uint64(5), 7) * uint64(9)
    t = s1 << uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    s[0] = s0
    s[1] = s1
    s[2] = s2
    s[3] = s3
    return result


@njit(cache=True, inline="always")
def _uniform(s):
    """A uniform double in [0, 1) with 53 random bits."""
    return (_next(s) >> uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _open_uniform(s):
    """A uniform double in (0, 1): (53 random bits + 1/2) / 2^53, never 0 or 1."""
    return ((_next(s) >> uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


def _ziggurat_tables(r=7.69711747013104972, v=0.0039496598225815571993):
    """Marsaglia & Tsang's (2000) 256-layer ziggurat for Exp(1): layer edges X[0..256]
    (X[0] = v / e^-r is the base layer's virtual width, X[1] = r, X[256] = 0; every layer
    has area v) and the density at them, F = e^-X."""
    X = np.empty(257)
    X[0], X[1] = v / math.exp(-r), r
    for i in range(1, 255):
        X[i + 1] = -math.log(v / X[i] + math.exp(-X[i]))
    X[256] = 0.0
    return X, np.exp(-X)


_ZIG_X, _ZIG_F = _ziggurat_tables()


@njit(cache=True, inline="always")
def _exponential(s):
    """An Exp(1) draw by the ziggurat: one 64-bit word picks a layer (low 8 bits) and a
    point in it (high 53 bits); about 99% of draws end at the first comparison, the rest
    go to the wedge test or the tail r + Exp(1). Exact in law up to double rounding."""
    while True:
        bits = _next(s)
        i = np.int64(bits & uint64(255))
        x = (bits >> uint64(11)) * (1.0 / 9007199254740992.0) * _ZIG_X[i]
        if x < _ZIG_X[i + 1]:
            return x
        if i == 0:
            return _ZIG_X[1] - math.log(_open_uniform(s))
        y = _ZIG_F[i] + _uniform(s) * (_ZIG_F[i + 1] - _ZIG_F[i])
        if y < math.exp(-x):
            return x


@njit(cache=True)
def _binomial(s, n, p):
    """One Binomial(n, p) draw, exact for any int64 n: inversion with
    q^n = exp(n log1p(−p)) for means ≤ 30 (tiny p keeps its precision), Numba's BTPE
    (NumPy's algorithm) above."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    flip = p > 0.5
    if flip:
        p = 1.0 - p
    mean = n * p
    if mean > 30.0:
        k = np.random.binomial(n, p)
        return n - k if flip else k
    bound = min(float(n), mean + 10.0 * math.sqrt(mean + 1.0) + 10.0)
    p0 = math.exp(n * math.log1p(-p))
    ratio = p / (1.0 - p)
    while True:
        u = _uniform(s)
        px = p0
        k = 0
        while k <= bound:
            if u < px:
                return n - k if flip else k
            u -= px
            k += 1
            px *= (n - k + 1) * ratio / k


# --- sorting: LSD radix sort of non-negative doubles (their bits order like the values) --

#: Radix digits of 11 bits (2048 counts stay in L1), taken from the top of key − min, so
#: that the digits span the keys' actual range rather than the whole double.
RADIX_BITS = 11
#: Digit bits beyond log2(n) (two digits up to 32 767 keys): keys that share all their
#: digits are then rare, and the insertion sort that finishes the job moves few elements.
RADIX_SPARE = 7
#: Fewer keys than this go straight to the insertion sort.
RADIX_MIN = 32


@njit(cache=True)
def _radix_passes(src_k, src_i, dst_k, dst_i, n, count, lo, shift, passes):
    """Stable LSD radix passes on ``passes`` 11-bit digits of (key − lo) >> shift, least
    significant first; a pass whose digit is constant is skipped. Returns the arrays
    holding the result."""
    size = 1 << RADIX_BITS
    mask = uint64(size - 1)
    for d in range(passes):
        sh = uint64(shift + RADIX_BITS * d)
        count[:size] = 0
        for e in range(n):
            count[np.int64(((src_k[e] - lo) >> sh) & mask)] += 1
        if count[np.int64(((src_k[0] - lo) >> sh) & mask)] == n:
            continue
        total = 0
        for c in range(size):
            v = count[c]
            count[c] = total
            total += v
        for e in range(n):
            pos = np.int64(((src_k[e] - lo) >> sh) & mask)
            q = count[pos]
            count[pos] = q + 1
            dst_k[q] = src_k[e]
            dst_i[q] = src_i[e]
        src_k, src_i, dst_k, dst_i = dst_k, dst_i, src_k, src_i
    return src_k, src_i, dst_k, dst_i


@njit(cache=True)
def _insertion(keys, ids, n, budget):
    """Insertion sort of keys[:n] carrying ids; gives up (returns False, a permutation
    left behind) once it has moved more than ``budget`` elements."""
    moved = 0
    for e in range(1, n):
        v = keys[e]
        if keys[e - 1] <= v:
            continue
        vi = ids[e]
        q = e - 1
        while q >= 0 and keys[q] > v:
            keys[q + 1] = keys[q]
            ids[q + 1] = ids[q]
            q -= 1
        keys[q + 1] = v
        ids[q + 1] = vi
        moved += e - 1 - q
        if moved > budget:
            return False
    return True


@njit(cache=True, inline="always")
def _bit_length(v):
    """Number of bits of the uint64 v (0 for 0)."""
    bits = 0
    while v > uint64(0):
        v >>= uint64(1)
        bits += 1
    return bits


@njit(cache=True)
def _radix_sort(keys, ids, keys2, ids2, n, count):
    """Sort keys[:n] (uint64 bits of non-negative doubles) carrying ids; returns the
    arrays holding the result. LSD radix passes on the top log2(n) + RADIX_SPARE bits of
    key − min (two 11-bit digits for 17 000 Zipf clocks spanning 20 binades, where the
    top 33 bits of the raw doubles took three), then an insertion sort on all 64 bits,
    which only reorders the rare keys that share those digits. If it would move more than
    4n elements (crowded keys), it sorts again on every bit of key − min. ``count`` needs
    2048 entries."""
    if n < RADIX_MIN:
        _insertion(keys, ids, n, n * n)
        return keys, ids
    lo = hi = keys[0]
    for e in range(1, n):
        v = keys[e]
        lo = min(lo, v)
        hi = max(hi, v)
    top = _bit_length(hi - lo)
    need = _bit_length(uint64(n)) + RADIX_SPARE
    passes = -(-min(need, top) // RADIX_BITS)
    src_k, src_i, dst_k, dst_i = keys, ids, keys2, ids2
    while True:
        shift = max(0, top - RADIX_BITS * passes)
        src_k, src_i, dst_k, dst_i = _radix_passes(src_k, src_i, dst_k, dst_i, n, count, lo,
                                                   shift, passes)
        if shift == 0 or _insertion(src_k, src_i, n, 4 * n):
            return src_k, src_i
        passes = -(-top // RADIX_BITS)


# --- the three realizations ------------------------------------------------------------

@njit(cache=True)
def _probe(s, r, lam, known_r, known_P, nk):
    """P at event r of the post-learning Poisson process, drawn given its known values:
    between known neighbours a < r < b the count splits binomially in proportion to the
    integrated intensity Λ. ``known_r[:nk]`` is sorted, from −1 (P = 0) to the window's
    last event. Returns (P_r, new number of known points)."""
    lo, hi = 0, nk - 1
    while lo < hi:  # first known point at or after r
        mid = (lo + hi) >> 1
        if known_r[mid] < r:
            lo = mid + 1
        else:
            hi = mid
    pos = lo
    if known_r[pos] == r:
        return known_P[pos], nk
    a, b = pos - 1, pos
    lam_a = 0.0 if known_r[a] < 0 else lam[known_r[a]]
    width = lam[known_r[b]] - lam_a
    n_ab = known_P[b] - known_P[a]
    frac = (lam[r] - lam_a) / width if width > 0.0 else 0.0
    value = known_P[a] + _binomial(s, n_ab, min(1.0, max(0.0, frac)))
    for q in range(nk, pos, -1):
        known_r[q] = known_r[q - 1]
        known_P[q] = known_P[q - 1]
    known_r[pos] = r
    known_P[pos] = value
    return value, nk + 1


@njit(cache=True)
def _first_above(lam, lo, hi, offset, target):
    """The first r in [lo, hi) with offset + r + lam[r] > target (hi if none): where the
    sample index of event r would cross target if P took its mean."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if offset + mid + lam[mid] > target:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True)
def _crossing(s, target, lo, n, offset, lam, known_r, known_P, nk):
    """The number of the window's events whose sample index offset + r + P_r is at most
    target (offset = samples before the window + 1), given that it is at least lo: a
    binary search over r that draws P only where it probes. The first two probes bracket
    the mean crossing ± 3 standard deviations of P, so a search costs about
    2 + log2(events in the bracket) draws instead of log2(events in the window); any
    bracket gives the same law, only the number of probes depends on it.
    Returns (crossing, nk)."""
    hi = n
    if hi - lo > 8:
        mean_r = _first_above(lam, lo, hi, offset, target)
        spread = 3.0 * math.sqrt(lam[min(mean_r, n)]) + 2.0
        for edge in (_first_above(lam, lo, hi, offset, target + spread),
                     _first_above(lam, lo, hi, offset, target - spread) - 1):
            if lo <= edge < hi:
                Pm, nk = _probe(s, edge, lam, known_r, known_P, nk)
                if offset + edge + Pm <= target:
                    lo = edge + 1
                else:
                    hi = edge
    while lo < hi:
        mid = (lo + hi) >> 1
        Pm, nk = _probe(s, mid, lam, known_r, known_P, nk)
        if offset + mid + Pm <= target:
            lo = mid + 1
        else:
            hi = mid
    return lo, nk


@njit(cache=True, inline="always")
def _id_bits(tau):
    """Bits that hold an occurrence number 0..τ−1: an event's id is (i << bits) | r, so
    decoding takes a shift and a mask instead of two integer divisions by τ."""
    bits = 0
    while (1 << bits) < tau:
        bits += 1
    return bits


#: Cost of a tail event relative to a head clock (random memory access per event against
#: sequential passes; measured: K = 10^5, α = 0.4, best split near 2·10^4 at D = 10^6,
#: no split at D = 10^7; with the alias table and the ziggurat, 2 and 4 tie at D = 10^6).
TAIL_COST = 4.0


@njit(cache=True)
def _window_end(d_max):
    """End of the first window of Poisson time: N(t) ~ Poisson(t) exceeds d_max by then
    except with probability about Φ(−10); windows are extended exactly if not."""
    return d_max + 10.0 * math.sqrt(d_max) + 100.0


@njit(cache=True)
def _split(p, sf, tau, t_end):
    """Number h of head quanta that get clocks: the i minimizing the cost model
    τ·i (clocks) + TAIL_COST·t_end·sf[i] (expected tail events up to t_end). h = K (no
    sparse tail) when the largest grid point hits most quanta."""
    K = p.size
    best, h = float(K * tau), K
    for i in range(K):
        c = tau * i + TAIL_COST * t_end * sf[i]
        if c < best:
            best, h = c, i
    return h


@njit(cache=True)
def _alias(p, sf, h, K):
    """Walker's alias table (Vose's construction) for drawing a tail quantum i ≥ h with
    probability p[i] / sf[h] in O(1): row b holds the chance of keeping quantum h + b and,
    as a float, the quantum that takes the rest of its slot. One row per draw, so one
    cache line, where an inverse-CDF search reads several scattered entries."""
    M = max(K - h, 1)
    table = np.zeros((M, 2))
    if h >= K:
        return table
    scaled = np.empty(M)
    small = np.empty(M, np.int64)
    large = np.empty(M, np.int64)
    ns = nl = 0
    for b in range(M):
        scaled[b] = p[h + b] * M / sf[h]
        if scaled[b] < 1.0:
            small[ns] = b
            ns += 1
        else:
            large[nl] = b
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        sm = small[ns]
        lg = large[nl - 1]
        table[sm, 0] = scaled[sm]
        table[sm, 1] = h + lg
        scaled[lg] = (scaled[lg] + scaled[sm]) - 1.0
        if scaled[lg] < 1.0:
            nl -= 1
            small[ns] = lg
            ns += 1
    for q in range(nl):  # left over by rounding: keep with certainty
        table[large[q], 0] = 1.0
        table[large[q], 1] = h + large[q]
    for q in range(ns):
        table[small[q], 0] = 1.0
        table[small[q], 1] = h + small[q]
    return table


@njit(cache=True, inline="always")
def _draw_tail(s, alias, h):
    """A quantum i ≥ h with probability p[i] / sf[h]: one uniform picks a slot of the
    alias table (its high bits) and, with its remaining bits, keeps it or takes its
    alias."""
    M = alias.shape[0]
    v = _uniform(s) * M
    b = min(int(v), M - 1)
    if v - b < alias[b, 0]:
        return h + b
    return int(alias[b, 1])


@njit(cache=True, inline="always")
def _two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth's TwoSum)."""
    s = a + b
    bp = s - a
    return s, (a - (s - bp)) + (b - bp)


@njit(cache=True, inline="always")
def _deposit(acc, m, g, hi, lo):
    """Add the double-double hi + lo to grid point g's (acc[g], acc[m + g])."""
    s, err = _two_sum(acc[g], hi)
    acc[g] = s
    acc[m + g] += err + lo


@njit(cache=True)
def _head_events(s, p, inv_p, h, tau, bits, t_lo, t_hi, ev_key, ev_id):
    """Draw the head quanta's clocks (τ sums of Exp(p_i) each, from i = h − 1 down) and
    write those in (t_lo, t_hi] to ev_key/ev_id, coded (i << bits) | r. Returns their
    number and the head mass not yet learned by t_hi (summed from the rare end)."""
    n = 0
    left = 0.0
    for i in range(h - 1, -1, -1):
        t = 0.0
        for r in range(tau):
            t += _exponential(s) * inv_p[i]
            if t_lo < t <= t_hi:
                ev_key[n] = t
                ev_id[n] = (i << bits) | r
                n += 1
        if t > t_hi:
            left += p[i]
    return n, left


@njit(cache=True)
def _tail_events(s, alias, h, seen, tau, bits, t_lo, t_hi, inv_rate, ev_key, ev_id, tail_id,
                 n, nt, tail_left):
    """The tail's events in (t_lo, t_hi]: a Poisson process of rate 1/inv_rate = sf[h], each
    event a quantum i ≥ h (``_draw_tail``); its first τ occurrences per quantum are appended
    to ev_key/ev_id after the n events there (and their ids to tail_id after nt), later ones
    are dropped (P stands for them). Returns the new (n, nt, tail_left), tail_left counting
    the tail quanta not yet learned."""
    last = tau - 1
    t = t_lo
    while True:
        t += _exponential(s) * inv_rate
        if t > t_hi:
            return n, nt, tail_left
        i = _draw_tail(s, alias, h)
        c = seen[i]
        if c < tau:
            seen[i] = c + 1
            if c == last:
                tail_left -= 1
            ev_key[n] = t
            ev_id[n] = (i << bits) | c
            tail_id[nt] = ev_id[n]
            n += 1
            nt += 1


@njit(cache=True)
def _intensity(sorted_key, order, n, p, bits, last, t_lo, t_hi, mass, lam):
    """lam[r] = ∫ λ from t_lo to the window's event r (in time order), lam[n] to t_hi, where
    λ, the intensity of P, starts at ``mass`` and grows by p_i at each learning event (a τ-th
    occurrence). Returns the learned mass at t_hi."""
    mask = (1 << bits) - 1
    integral, t_prev, rate = 0.0, t_lo, mass
    for r in range(n):
        t = sorted_key[r]
        integral += rate * (t - t_prev)
        lam[r] = integral
        t_prev = t
        e = order[r]
        if e & mask == last:
            rate += p[e >> bits]
    lam[n] = integral + rate * (t_hi - t_prev)
    return rate


@njit(cache=True)
def _window_crossings(s, x, j0, before, n, lam, known_r, known_P, cross):
    """P's total over the window (Poisson(lam[n])), then for each grid point j ≥ j0 reached
    inside the window the number cross[j] of the window's events with sample index ≤ x[j]
    (``_crossing``); grid points beyond the window get all n. Returns (first grid point
    beyond the window, P's total)."""
    m = x.size
    known_r[0] = -1
    known_P[0] = 0
    p_end = np.random.poisson(lam[n]) if lam[n] > 0.0 else 0
    known_r[1] = n
    known_P[1] = p_end
    nk = 2
    j = j0
    lo = 0
    while j < m and before + n + p_end > x[j]:
        lo, nk = _crossing(s, float(x[j]), lo, n, float(before + 1), lam, known_r, known_P,
                           nk)
        cross[j] = lo
        j += 1
    for jj in range(j, m):
        cross[jj] = n  # beyond the window: all its events come first
    return j, p_end


@njit(cache=True)
def _tally_window(order, n, bits, last, cross, j0, w, kmax, acc, codes, ncode, gbits,
                  want_p):
    """Add the w-mass of each learning event of the window (in time order) to the grid
    point whose crossing it precedes (double-double, ``_deposit``), and if ``want_p`` its
    code (i << gbits) | g to ``codes``. Returns the new ``ncode``."""
    m = cross.size
    mask = (1 << bits) - 1
    g = j0
    run, run_lo = 0.0, 0.0  # mass learned at grid point g so far
    for r in range(n):
        e = order[r]
        if e & mask != last:
            continue
        while g < m and cross[g] <= r:
            _deposit(acc, m, g, run, run_lo)
            run, run_lo = 0.0, 0.0
            g += 1
        i = e >> bits
        if i < kmax and g < m:
            run, err = _two_sum(run, w[i])
            run_lo += err
            if want_p:
                codes[ncode] = (i << gbits) | g
                ncode += 1
    if g < m:
        _deposit(acc, m, g, run, run_lo)
    return ncode


@njit(cache=True)
def _unlearned(acc, w_all, out):
    """out[j] = Σ w − the mass learned by grid point j (cumulated double-doubles)."""
    m = out.size
    learned, learned_lo = 0.0, 0.0
    for jj in range(m):
        learned, err = _two_sum(learned, acc[jj])
        learned_lo += err + acc[m + jj]
        out[jj] = (w_all[0] - learned) + (w_all[1] - learned_lo)


@njit(cache=True)
def _one_samples(s, p, inv_p, sf, w, w_all, x, tau, kmax, h, alias, tail_quanta, t_end,
                 seen, ev_key, ev_id, tmp_key, tmp_id, tail_id, lam, count, known_r,
                 known_P, cross, acc, out, codes, ncode, gbits, want_p):
    """Multi-epoch data: quantum i is learned at grid point j once it occurred τ times
    among the first x[j] samples.

    Embed the sample sequence in a rate-1 Poisson process. Quantum i's first τ occurrences
    come at sums of Exp(p_i) clocks (its τ-th is its learning time); every later occurrence
    of a learned quantum belongs to a Poisson process P of intensity λ(t) = the mass learned
    by t. The sample index of an event at time t is N(t) = (clock events ≤ t) + P(t), so
    quantum i is learned by sample D iff N(its τ-th clock) ≤ D. After sorting the clocks
    (radix sort), P is drawn only where needed: its total by the window's end, then by
    binomial splits (given P at two times, the count between splits in proportion to
    ∫λ) during a binary search for each grid point's crossing (``_crossing``). Clocks are
    sorted window by window of Poisson time, the first ending at ``t_end``; a later window
    draws the head clocks again from the generator state they were first drawn from.

    Only the h head quanta get clocks drawn; the tail i ≥ h (rarely hit by the largest
    grid point) is generated as one Poisson process of rate sf[h] over the window, each
    event assigned to quantum i with probability p[i] / sf[h] (``_draw_tail``, an alias
    table): its first τ events per quantum are that quantum's clocks (sorted with the
    head's), later ones are dropped (P stands for them, by the strong Markov property).
    Exact; costs O(h τ + tail events) per realization, O(Kτ) at most.

    Tallied as it goes: the learning events come in time order, so the w-mass learned at
    each grid point is summed in a register and ``out[j]`` = w_all − the mass learned by
    x[j] (no pass over the quanta). Both are double-double sums (``_two_sum``; ``w_all``
    is (hi, lo), ``acc[g]``/``acc[m + g]`` the hi/lo of the mass learned at grid point g),
    so the difference keeps its precision when almost everything is learned. If
    ``want_p``, each learned quantum i appends (i << gbits) | g to ``codes`` (from
    ``ncode`` on). Returns the number of tail clocks (their ids stay in ``tail_id``, so
    that ``_reset_tail`` can clear their occurrence counts ``seen``) and the new ``ncode``.
    """
    bits = _id_bits(tau)
    last = tau - 1
    acc[:] = 0.0
    t_lo = 0.0
    t_hi = t_end
    head = s.copy()  # the generator state the head clocks are drawn from
    # from t_lo = −1: a clock at exactly 0 (the ziggurat returns 0 with chance 2^-53) counts
    n, left = _head_events(s, p, inv_p, h, tau, bits, -1.0, t_hi, ev_key, ev_id)
    rate_tail = sf[h] if h < p.size else 0.0
    inv_rate = 1.0 / rate_tail if rate_tail > 0.0 else 0.0
    tail_left = tail_quanta  # tail quanta (of positive mass) not yet learned
    nt = 0         # tail clocks so far (all windows)
    before = 0     # samples N(t_lo) before the window
    mass = 0.0     # learned mass at t_lo (intensity of P)
    j0 = 0         # first grid point not yet resolved
    while True:
        if t_lo > 0.0:  # a later window: the same head clocks, drawn again
            n, left = _head_events(head.copy(), p, inv_p, h, tau, bits, t_lo, t_hi, ev_key,
                                   ev_id)
        if rate_tail > 0.0:
            n, nt, tail_left = _tail_events(s, alias, h, seen, tau, bits, t_lo, t_hi,
                                            inv_rate, ev_key, ev_id, tail_id, n, nt,
                                            tail_left)
        sorted_key, order = ev_key, ev_id
        if n > 0:
            sk, order = _radix_sort(ev_key.view(np.uint64), ev_id, tmp_key, tmp_id, n, count)
            sorted_key = sk.view(np.float64)
        rate = _intensity(sorted_key, order, n, p, bits, last, t_lo, t_hi, mass, lam)
        j, p_end = _window_crossings(s, x, j0, before, n, lam, known_r, known_P, cross)
        ncode = _tally_window(order, n, bits, last, cross, j0, w, kmax, acc, codes, ncode,
                              gbits, want_p)
        j0 = j
        if j0 >= x.size or (left <= 0.0 and tail_left <= 0):
            _unlearned(acc, w_all, out)
            return nt, ncode
        before += n + p_end
        mass = rate
        t_lo = t_hi
        t_hi *= 4.0


@njit(cache=True)
def _draw_index(s, sf, lo, K):
    """An index i ≥ lo drawn with probability p[i] / sf[lo] (inverse CDF, binary search)."""
    u = _uniform(s) * sf[lo]
    hi = K - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if sf[mid + 1] > u:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _present(i, j, tau, counts, learned_at):
    """Quantum i present in one more step of interval j."""
    if counts[i] < tau:
        counts[i] += 1
        if counts[i] == tau:
            learned_at[i] = j


@njit(cache=True)
def _nonzero_binomial(s, B, t, q):
    """Binomial(B, t) conditioned on ≥ 1, where q = P(≥ 1) = 1 − (1 − t)^B."""
    if q > 0.25:
        while True:
            c = _binomial(s, B, t)
            if c > 0:
                return c
    # position of the first success (geometric truncated to 1..B), then the rest
    first = math.ceil(math.log1p(-_uniform(s) * q) / math.log1p(-t))
    first = min(max(first, 1), B)
    return 1 + _binomial(s, B - first, t)


@njit(cache=True)
def _one_steps(s, p, sf, x, batch, tau, kmax, counts, learned_at, last_step):
    """Single epoch, step rule: quantum i is learned at grid point j once it was present in
    τ distinct steps among the first x[j] steps of ``batch`` fresh samples.

    Interval by interval, with L the first quantum not yet learned, only the steps holding
    a sample on quanta ≥ L are generated (H ~ Bin(n, 1 − (1 − sf[L])^B) of them), each with
    a zero-truncated binomial number of such samples, spread one by one (inverse CDF) or by
    conditional binomials, whichever is cheaper. Exact; costs about the number of samples
    that land on quanta ≥ L.
    """
    K = p.size
    m = x.size
    counts[:] = 0
    learned_at[:] = m
    last_step[:] = -1.0
    total = sf[0]
    L = 0
    prev = 0
    step_id = 0.0
    for j in range(m):
        while L < kmax and learned_at[L] < j:
            L += 1
        if L >= kmax:
            return
        n = x[j] - prev
        prev = x[j]
        t = min(1.0, sf[L] / total)
        q = -math.expm1(batch * math.log1p(-t)) if t < 1.0 else 1.0
        H = _binomial(s, n, q)
        width = K - L
        for _ in range(H):
            c = _nonzero_binomial(s, batch, t, q)
            if c * (math.log2(width) + 2.0) <= 1.5 * width:
                for _ in range(c):
                    i = _draw_index(s, sf, L, K)
                    if i < kmax and learned_at[i] >= j and last_step[i] != step_id:
                        last_step[i] = step_id
                        _present(i, j, tau, counts, learned_at)
            else:
                rem = c
                for i in range(L, K):
                    if rem == 0:
                        break
                    ci = _binomial(s, rem, min(1.0, p[i] / sf[i])) if i < K - 1 else rem
                    rem -= ci
                    if ci > 0 and i < kmax and learned_at[i] >= j:
                        _present(i, j, tau, counts, learned_at)
            step_id += 1.0


@njit(cache=True)
def _one_noisy_n(s, p, sf, x, D, tau, counts, learned_at, key, ids, tmp_key, tmp_id,
                 count):
    """Capacity-limited learner with a noisy order: from D samples (multinomial counts by
    sequential conditional binomials), it learns the x[j] quanta it saw most often among
    those seen ≥ τ times, ties broken at random."""
    K = p.size
    m = x.size
    rem = D
    for i in range(K):
        c = 0
        if rem > 0:
            c = _binomial(s, rem, min(1.0, p[i] / sf[i])) if i < K - 1 else rem
        rem -= c
        counts[i] = c
        # ascending key = descending count (+ a random tie-break); unseen-enough last
        key[i] = 1.0 / (c + _uniform(s) + 1.0) if c >= tau else 2.0
        ids[i] = i
    _, order = _radix_sort(key.view(np.uint64), ids, tmp_key, tmp_id, K, count)
    learned_at[:] = m
    j = 0
    for r in range(K):
        i = order[r]
        if counts[i] < tau:
            return
        while j < m and x[j] <= r:
            j += 1
        if j == m:
            return
        learned_at[i] = j


@njit(cache=True)
def _tally(w, learned_at, out, codes, ncode, gbits, want_p):
    """Loss above L∞ at every grid point (Σ of w over quanta not yet learned there) from
    ``learned_at`` and, if wanted, (i << gbits) | g appended to ``codes`` for each quantum
    i first learned at grid index g. Returns the new ``ncode``."""
    m = out.size
    acc = np.zeros(m + 1)
    for i in range(w.size):
        g = learned_at[i]
        acc[g] += w[i]
        if want_p and g < m:
            codes[ncode] = (i << gbits) | g
            ncode += 1
    run = acc[m]
    for j in range(m - 1, -1, -1):
        out[j] = run
        run += acc[j]
    return ncode


@njit(cache=True)
def _reset_tail(seen, tail_id, nt, tau):
    """Clear the occurrence counts of the tail quanta the data kernel touched."""
    bits = _id_bits(tau)
    for q in range(nt):
        seen[tail_id[q] >> bits] = 0


@njit(cache=True)
def _realization(mode, s, p, inv_p, sf, w, x, tau, batch, kmax, D, h, alias, tail_quanta,
                 t_end, w_all, seen, counts, learned_at, key, ev_key, ev_id, tmp_key, tmp_id,
                 tail_id, aux, count, known_r, known_P, cross, acc, out, codes, ncode, gbits,
                 want_p):
    """One realization of the chosen mode, tallied into ``out`` (and ``codes``); returns
    the new number of codes."""
    np.random.seed(np.uint32(s[3] >> uint64(32)))
    if mode == MODE_SAMPLES:
        nt, ncode = _one_samples(s, p, inv_p, sf, w, w_all, x, tau, kmax, h, alias,
                                 tail_quanta, t_end, seen, ev_key, ev_id, tmp_key, tmp_id,
                                 tail_id, aux, count, known_r, known_P, cross, acc, out,
                                 codes, ncode, gbits, want_p)
        _reset_tail(seen, tail_id, nt, tau)
        return ncode
    if mode == MODE_STEPS:
        _one_steps(s, p, sf, x, batch, tau, kmax, counts, learned_at, aux)
    else:
        _one_noisy_n(s, p, sf, x, D, tau, counts, learned_at, key, ev_id, tmp_key, tmp_id,
                     count)
    return _tally(w, learned_at, out, codes, ncode, gbits, want_p)


#: p_learned: each realization appends a code (i << gbits) | g per learned quantum to its
#: worker's list (``code_buffer`` codes, at least K); when the list could overflow in the
#: next realization, it is bucketed by block of 2^HIST_BLOCK_BITS quanta and added block by
#: block to the worker's own points × K table of first-learned counts, so that every
#: increment hits a block in cache and no worker waits for another. The tables are summed
#: at the end (``_fractions``).
HIST_BLOCK_BITS = 8


@njit(cache=True)
def _flush(codes, n, shift, gbits, starts, scratch, hist):
    """Add codes[:n] ((i << gbits) | g) to hist[g, i], counting-sorted by block first."""
    nb = starts.size - 1
    gmask = (1 << gbits) - 1
    starts[:] = 0
    for e in range(n):
        starts[(codes[e] >> shift) + 1] += 1
    for b in range(nb):
        starts[b + 1] += starts[b]
    for e in range(n):
        b = codes[e] >> shift
        scratch[starts[b]] = codes[e]
        starts[b] += 1
    for e in range(n):
        c = scratch[e]
        hist[c & gmask, c >> gbits] += 1


@njit(cache=True, parallel=True)
def _fractions(hist, reps, block):
    """learned[j, i] = Σ_workers Σ_{g ≤ j} hist[q, g, i] / reps, block by block."""
    nq, m, K = hist.shape
    learned = np.empty((m, K))
    nb = -(-K // block)
    for b in prange(nb):
        lo, hi = b * block, min(K, (b + 1) * block)
        run = np.zeros(hi - lo, np.int64)
        for g in range(m):
            for q in range(nq):
                for i in range(lo, hi):
                    run[i - lo] += hist[q, g, i]
            for i in range(lo, hi):
                learned[g, i] = run[i - lo] / reps
    return learned


@njit(cache=True, parallel=True)
def _simulate(mode, p, sf, w, x, tau, batch, kmax, D, states, want_p, nt, code_buffer,
              t_end):
    """All realizations of one configuration: ``out[r, j]`` is realization r's loss above
    L∞ at grid point j; ``learned[j, i]`` the fraction of realizations that learned quantum
    i by grid point j, if ``want_p`` (from integer counts, so the result does not depend on
    the thread count; see ``HIST_BLOCK_BITS``). ``nt`` workers run the realizations
    (``numba.get_num_threads()`` or fewer, passed in: calling it here defeats caching).
    The data kernel's first window ends at ``t_end`` (``_window_end``; any end gives the
    same law) and its head/tail split h (``_split``) depends on the configuration only."""
    K = p.size
    m = x.size
    reps = states.shape[0]
    ke = K * tau if mode == MODE_SAMPLES else K
    h = _split(p, sf, tau, t_end) if mode == MODE_SAMPLES else K
    alias = _alias(p, sf, h, K)
    tail_quanta = 0  # tail quanta of positive mass (the others are never drawn)
    for i in range(K - 1, h - 1, -1):
        if p[i] > 0.0:
            tail_quanta += 1
    w_all = np.zeros(2)  # Σ w as a double-double (hi, lo)
    for i in range(K - 1, -1, -1):
        w_all[0], err = _two_sum(w_all[0], w[i])
        w_all[1] += err
    kt = (K - h) * tau if h < K else 1
    k_other = K if mode != MODE_SAMPLES else 1  # per-quantum arrays the data kernel lacks
    seen = np.zeros((nt, K - k_other + 1), np.int32)  # int32: fewer cache misses
    counts = np.zeros((nt, k_other), np.int64)
    learned_at = np.full((nt, k_other), m, np.int64)
    key = np.zeros((nt, K if mode == MODE_NOISY_N else 1))
    ev_key = np.zeros((nt, ke))
    ev_id = np.zeros((nt, ke), np.int64)
    tmp_key = np.zeros((nt, ke), np.uint64)
    tmp_id = np.zeros((nt, ke), np.int64)
    tail_id = np.zeros((nt, kt), np.int64)
    aux = np.zeros((nt, ke + 1))
    count = np.zeros((nt, 1 << RADIX_BITS), np.int64)
    known_r = np.zeros((nt, 2 + 64 * (m + 1)), np.int64)
    known_P = np.zeros((nt, 2 + 64 * (m + 1)), np.int64)
    cross = np.zeros((nt, m), np.int64)
    acc = np.zeros((nt, 2 * m))
    out = np.empty((reps, m))
    inv_p = 1.0 / p
    per = -(-reps // nt)  # worker q runs realizations q·per, …, with scratch row q
    hist = np.zeros((nt, m, K) if want_p else (1, 1, 1), np.int32)
    gbits = _id_bits(m + 1)
    shift = gbits + HIST_BLOCK_BITS
    cap = max(K, code_buffer) if want_p else 1  # a realization adds at most K codes
    codes = np.empty((nt, cap), np.int64)
    scratch = np.empty_like(codes)
    starts = np.zeros((nt, (K >> HIST_BLOCK_BITS) + 2), np.int64)
    for q in prange(nt):
        ncode = 0
        for r in range(q * per, min(reps, (q + 1) * per)):
            if want_p and ncode + K > cap:
                _flush(codes[q], ncode, shift, gbits, starts[q], scratch[q], hist[q])
                ncode = 0
            ncode = _realization(mode, states[r].copy(), p, inv_p, sf, w, x, tau, batch,
                                 kmax, D, h, alias, tail_quanta, t_end, w_all, seen[q],
                                 counts[q], learned_at[q], key[q], ev_key[q], ev_id[q],
                                 tmp_key[q], tmp_id[q], tail_id[q], aux[q], count[q],
                                 known_r[q], known_P[q], cross[q], acc[q], out[r], codes[q],
                                 ncode, gbits, want_p)
        if want_p:
            _flush(codes[q], ncode, shift, gbits, starts[q], scratch[q], hist[q])
    learned = _fractions(hist, reps, 1 << HIST_BLOCK_BITS) if want_p else np.zeros((1, 1))
    return out, learned
