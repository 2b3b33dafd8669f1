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

#: Radix digits: three 11-bit digits cover the top 33 bits (sign, exponent, 21 bits of
#: mantissa); 2048-entry counts stay in L1, where 16-bit digits cost 2 × 65536 per pass.
RADIX_BITS = 11
RADIX_LOW = 31
RADIX_PASSES = 3
#: Below this many keys, try two digits first (measured on Zipf clocks: 25% faster at 4·10^3
#: keys, even at 2·10^4, 1.6× slower at 10^5, where near-ties in 22 bits abound).
RADIX_SHORT = 8192


@njit(cache=True)
def _radix_passes(src_k, src_i, dst_k, dst_i, n, count, first):
    """Stable LSD radix passes on digits first..2 of the top 33 bits (counted in one pass
    over the keys; a pass whose digit is constant is skipped). Returns the arrays holding
    the result."""
    size = 1 << RADIX_BITS
    mask = uint64(size - 1)
    count[:RADIX_PASSES * size] = 0
    for e in range(n):
        v = src_k[e]
        for d in range(first, RADIX_PASSES):
            count[d * size + np.int64((v >> uint64(RADIX_LOW + RADIX_BITS * d)) & mask)] += 1
    for d in range(first, RADIX_PASSES):
        sh = uint64(RADIX_LOW + RADIX_BITS * d)
        base = d * size
        if n == 0 or count[base + np.int64((src_k[0] >> sh) & mask)] == n:
            continue
        total = 0
        for c in range(base, base + size):
            v = count[c]
            count[c] = total
            total += v
        for e in range(n):
            pos = base + np.int64((src_k[e] >> sh) & mask)
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


@njit(cache=True)
def _radix_sort(keys, ids, keys2, ids2, n, count):
    """Sort keys[:n] (uint64 bits of non-negative doubles) carrying ids; returns the
    arrays holding the result. LSD radix passes on the top 33 bits (three 11-bit digits),
    then an insertion sort on all 64 bits, which only has to reorder the rare keys that
    agree in those (relative gap < 2^-21). Below RADIX_SHORT keys the lowest digit is
    skipped (the insertion sort then does more, but less than a third pass costs) unless
    the insertion sort would move more than 4n elements, in which case it sorts again
    with all three digits. ``count`` needs 3 · 2048 entries."""
    src_k, src_i, dst_k, dst_i = keys, ids, keys2, ids2
    first = 1 if n < RADIX_SHORT else 0
    while True:
        src_k, src_i, dst_k, dst_i = _radix_passes(src_k, src_i, dst_k, dst_i, n, count,
                                                   first)
        if _insertion(src_k, src_i, n, 4 * n if first == 1 else n * n) or first == 0:
            return src_k, src_i
        first = 0


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
def _one_samples(s, p, inv_p, sf, w, w_all, x, tau, kmax, h, alias, tail_quanta, counts,
                 key, ev_key, ev_id, tmp_key, tmp_id, tail_id, lam, count, known_r, known_P,
                 cross, acc, out, codes, ncode, gbits, want_p):
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
    sorted window by window of Poisson time.

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
    that ``_reset_tail`` can clear their counts) and the new ``ncode``.
    """
    m = x.size
    bits = _id_bits(tau)
    mask = (1 << bits) - 1
    last = tau - 1
    acc[:] = 0.0
    t_lo = 0.0
    t_hi = _window_end(float(x[m - 1]))
    n = 0       # events of the window (the first window's head events as drawn)
    left = 0.0  # unlearned head mass at the end of the window, from the rare end
    for i in range(h - 1, -1, -1):
        base = i * tau
        t = 0.0
        for r in range(tau):
            t += _exponential(s) * inv_p[i]
            key[base + r] = t
            if t <= t_hi:
                ev_key[n] = t
                ev_id[n] = (i << bits) | r
                n += 1
        if t > t_hi:
            left += p[i]
    rate_tail = sf[h] if h < p.size else 0.0
    inv_rate = 1.0 / rate_tail if rate_tail > 0.0 else 0.0
    tail_left = tail_quanta  # tail quanta (of positive mass) not yet learned
    nt = 0         # tail clocks so far (all windows)
    before = 0     # samples N(t_lo) before the window
    mass = 0.0     # learned mass at t_lo (intensity of P)
    j0 = 0         # first grid point not yet resolved
    while True:
        if t_lo > 0.0:  # a later window: its head events from the stored clocks
            n = 0
            left = 0.0
            for i in range(h - 1, -1, -1):
                base = i * tau
                if key[base + last] > t_hi:
                    left += p[i]
                for r in range(tau):
                    kv = key[base + r]
                    if t_lo < kv <= t_hi:
                        ev_key[n] = kv
                        ev_id[n] = (i << bits) | r
                        n += 1
        if rate_tail > 0.0:
            t = t_lo
            while True:
                t += _exponential(s) * inv_rate
                if t > t_hi:
                    break
                i = _draw_tail(s, alias, h)
                c = counts[i]
                if c < tau:
                    counts[i] = c + 1
                    if c == last:
                        tail_left -= 1
                    ev_key[n] = t
                    ev_id[n] = (i << bits) | c
                    tail_id[nt] = ev_id[n]
                    n += 1
                    nt += 1
        sorted_key, order = ev_key, ev_id
        if n > 0:
            sk, order = _radix_sort(ev_key.view(np.uint64), ev_id, tmp_key, tmp_id, n, count)
            sorted_key = sk.view(np.float64)
        # integrated intensity of P from t_lo to each event, and to t_hi
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
        known_r[0] = -1
        known_P[0] = 0
        p_end = np.random.poisson(lam[n]) if lam[n] > 0.0 else 0
        known_r[1] = n
        known_P[1] = p_end
        nk = 2
        # crossing c_j = number of events of the window with N ≤ x[j]
        j = j0
        lo = 0
        while j < m and before + n + p_end > x[j]:
            lo, nk = _crossing(s, float(x[j]), lo, n, float(before + 1), lam, known_r,
                               known_P, nk)
            cross[j] = lo
            j += 1
        for jj in range(j, m):
            cross[jj] = n  # beyond the window: all its events come first
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
        j0 = j
        if j0 >= m or (left <= 0.0 and tail_left <= 0):
            learned, learned_lo = 0.0, 0.0
            for jj in range(m):
                learned, err = _two_sum(learned, acc[jj])
                learned_lo += err + acc[m + jj]
                out[jj] = (w_all[0] - learned) + (w_all[1] - learned_lo)
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
def _reset_tail(counts, tail_id, nt, tau):
    """Clear the counts of the tail quanta the data kernel touched (ids in tail_id)."""
    bits = _id_bits(tau)
    for q in range(nt):
        counts[tail_id[q] >> bits] = 0


@njit(cache=True)
def _realization(mode, s, p, inv_p, sf, w, x, tau, batch, kmax, D, h, alias, tail_quanta,
                 w_all, counts, learned_at, key, ev_key, ev_id, tmp_key, tmp_id, tail_id,
                 aux, count, known_r, known_P, cross, acc, out, codes, ncode, gbits, want_p):
    """One realization of the chosen mode, tallied into ``out`` (and ``codes``); returns
    the new number of codes."""
    np.random.seed(np.uint32(s[3] >> uint64(32)))
    if mode == MODE_SAMPLES:
        nt, ncode = _one_samples(s, p, inv_p, sf, w, w_all, x, tau, kmax, h, alias,
                                 tail_quanta, counts, key, ev_key, ev_id, tmp_key, tmp_id,
                                 tail_id, aux, count, known_r, known_P, cross, acc, out,
                                 codes, ncode, gbits, want_p)
        _reset_tail(counts, tail_id, nt, tau)
        return ncode
    if mode == MODE_STEPS:
        _one_steps(s, p, sf, x, batch, tau, kmax, counts, learned_at, aux)
    else:
        _one_noisy_n(s, p, sf, x, D, tau, counts, learned_at, key, ev_id, tmp_key, tmp_id,
                     count)
    return _tally(w, learned_at, out, codes, ncode, gbits, want_p)


#: p_learned: each realization appends a code (i << gbits) | g per learned quantum to its
#: worker's list; after HIST_BATCH realizations per worker the lists are bucketed by block
#: of 2^HIST_BLOCK_BITS quanta and added to the histogram block by block in parallel, so
#: every increment hits a block that is in cache (direct increments into the points × K
#: table would be a cache miss each for the rare quanta). The lists hold at most
#: HIST_BUFFER codes per worker (fewer realizations per batch when K is large).
HIST_BATCH = 16
HIST_BUFFER = 2_000_000
HIST_BLOCK_BITS = 8


@njit(cache=True)
def _bucket(codes, n, shift, starts, out):
    """Counting sort of codes[:n] by block (code >> shift) into ``out``; block b's codes
    are out[starts[b]:starts[b + 1]]."""
    nb = starts.size - 1
    starts[:] = 0
    for e in range(n):
        starts[(codes[e] >> shift) + 1] += 1
    for b in range(nb):
        starts[b + 1] += starts[b]
    fill = starts[:nb].copy()
    for e in range(n):
        b = codes[e] >> shift
        out[fill[b]] = codes[e]
        fill[b] += 1


@njit(cache=True, parallel=True)
def _simulate(mode, p, sf, w, x, tau, batch, kmax, D, states, want_p, nt):
    """All realizations of one configuration: ``out[r, j]`` is realization r's loss above
    L∞ at grid point j; ``hist[j, i]`` counts realizations that learned quantum i first at
    grid point j, if ``want_p`` (integer sums, so the result does not depend on the thread
    count; filled through per-worker code lists, see ``HIST_BATCH``).
    ``nt`` is ``numba.get_num_threads()``, passed in (calling it here defeats caching).
    The data kernel's head/tail split h (``_split``) depends on the configuration only."""
    K = p.size
    m = x.size
    reps = states.shape[0]
    ke = K * tau if mode == MODE_SAMPLES else K
    h = _split(p, sf, tau, _window_end(float(x[m - 1]))) if mode == MODE_SAMPLES else K
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
    counts = np.zeros((nt, K), np.int64)
    learned_at = np.full((nt, K), m, np.int64)
    key = np.zeros((nt, ke))
    ev_key = np.zeros((nt, ke))
    ev_id = np.zeros((nt, ke), np.int64)
    tmp_key = np.zeros((nt, ke), np.uint64)
    tmp_id = np.zeros((nt, ke), np.int64)
    tail_id = np.zeros((nt, kt), np.int64)
    aux = np.zeros((nt, ke + 1))
    count = np.zeros((nt, RADIX_PASSES << RADIX_BITS), np.int64)
    known_r = np.zeros((nt, 2 + 64 * (m + 1)), np.int64)
    known_P = np.zeros((nt, 2 + 64 * (m + 1)), np.int64)
    cross = np.zeros((nt, m), np.int64)
    acc = np.zeros((nt, 2 * m))
    out = np.empty((reps, m))
    inv_p = 1.0 / p
    # worker q runs realizations c0 + q·per, … with scratch row q: a static split, so that
    # each worker's code list for p_learned is bounded (one batch when it is not wanted)
    per = max(1, min(HIST_BATCH, HIST_BUFFER // K)) if want_p else -(-reps // nt)
    hist = np.zeros((m + 1, K) if want_p else (1, 1), np.int32)
    gbits = _id_bits(m + 1)
    gmask = (1 << gbits) - 1
    shift = gbits + HIST_BLOCK_BITS
    n_blocks = (K >> HIST_BLOCK_BITS) + 1
    codes = np.empty((nt, per * K if want_p else 1), np.int64)
    sorted_codes = np.empty_like(codes)
    starts = np.zeros((nt, n_blocks + 1), np.int64)
    for c0 in range(0, reps, nt * per):
        for q in prange(nt):
            ncode = 0
            for r in range(c0 + q * per, min(reps, c0 + (q + 1) * per)):
                ncode = _realization(mode, states[r].copy(), p, inv_p, sf, w, x, tau, batch,
                                     kmax, D, h, alias, tail_quanta, w_all, counts[q],
                                     learned_at[q], key[q], ev_key[q], ev_id[q], tmp_key[q],
                                     tmp_id[q], tail_id[q], aux[q], count[q], known_r[q],
                                     known_P[q], cross[q], acc[q], out[r], codes[q], ncode,
                                     gbits, want_p)
            if want_p:
                _bucket(codes[q], ncode, shift, starts[q], sorted_codes[q])
        if want_p:
            for blk in prange(n_blocks):
                for q in range(nt):
                    for e in range(starts[q, blk], starts[q, blk + 1]):
                        c = sorted_codes[q, e]
                        hist[c & gmask, c >> gbits] += 1
    return out, hist
