"""Numba kernels of the Monte Carlo: arrays and scalars in, arrays out.

Conventions shared by every kernel (0-based index i is quantum k = i + 1):

- ``p[i]`` the frequencies, ``sf[i] = Σ_{i' ≥ i} p[i']`` their reverse cumulative sum
  (``sf[K] = 0``), summed from the rare end so that tail masses keep full precision;
- ``x`` the grid (samples, steps or numbers of quanta), non-decreasing int64;
- ``learned_at[i]``: the first grid index at which quantum i is learned (``m`` = never);
- one realization per ``prange`` iteration with its own generator state ``states[r]``
  (xoshiro256**, seeded from ``SeedSequence.spawn``; large-mean binomials use Numba's
  BTPE, whose per-thread generator is reseeded from the same state at the start of each
  realization). Realization r gets the same numbers whatever the thread count.

Every draw is exact (no normal or Poisson approximation of a count).
"""
from __future__ import annotations

import math

import numba
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


@njit(cache=True, inline="always")
def _exponential(s):
    return -math.log(_open_uniform(s))


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


@njit(cache=True)
def _geometric_failures(s, r, U):
    """Failures before the r-th success of Bernoulli(U) trials (r inverse-CDF geometric
    draws; log1p keeps tiny U exact)."""
    if U >= 1.0:
        return 0.0
    scale = 1.0 / math.log1p(-U)
    f = 0.0
    for _ in range(r):
        f += math.floor(math.log(_open_uniform(s)) * scale)
    return f


# --- sorting: LSD radix sort of non-negative doubles (their bits order like the values) --

@njit(cache=True)
def _radix_sort(keys, ids, keys2, ids2, n, count):
    """Sort keys[:n] (uint64 bits of non-negative doubles) carrying ids; returns the
    arrays holding the result. 16-bit digits; passes whose digit is constant are skipped."""
    src_k, src_i, dst_k, dst_i = keys, ids, keys2, ids2
    for shift in range(0, 64, 16):
        sh = uint64(shift)
        count[:] = 0
        for e in range(n):
            count[(src_k[e] >> sh) & uint64(0xFFFF)] += 1
        if count[(src_k[0] >> sh) & uint64(0xFFFF)] == n:
            continue
        total = 0
        for d in range(65536):
            c = count[d]
            count[d] = total
            total += c
        for e in range(n):
            d = (src_k[e] >> sh) & uint64(0xFFFF)
            pos = count[d]
            count[d] = pos + 1
            dst_k[pos] = src_k[e]
            dst_i[pos] = src_i[e]
        src_k, src_i, dst_k, dst_i = dst_k, dst_i, src_k, src_i
    return src_k, src_i


# --- the three realizations ------------------------------------------------------------

@njit(cache=True)
def _one_samples(s, p, inv_p, x, tau, kmax, learned_at, key, ev_key, ev_id, tmp_key, tmp_id,
                 u_before, count):
    """Multi-epoch data: quantum i is learned at grid point j once it occurred τ times
    among the first x[j] samples.

    Embed the sample sequence in a Poisson process: quantum i's first τ occurrences come at
    cumulative sums of Exp(p_i) clocks, and the order of all these occurrences is the
    order in which the sample sequence hits not-yet-learned quanta (competing
    exponentials). Between two such hits the sequence spends a Geometric(U) number of
    samples, U the mass not yet learned. Sorting the K·τ clocks and adding geometric waits
    gives every quantum's learning sample exactly, in O(K τ) (radix sort), whatever D is.
    Clocks are sorted window by window of Poisson time, so a small D grid sorts few.
    """
    K = p.size
    m = x.size
    for i in range(K):
        t = 0.0
        for r in range(tau):
            t += _exponential(s) * inv_p[i]
            key[i * tau + r] = t
    learned_at[:] = m
    d_max = float(x[m - 1])
    t_lo = -1.0
    t_hi = 2.0 * d_max + 10.0 * math.sqrt(d_max) + 100.0
    T = 0.0
    pending = 0
    j = 0
    while True:
        u_end = 0.0  # mass not learned by the end of the window, summed from the rare end
        for i in range(K - 1, -1, -1):
            if key[i * tau + tau - 1] > t_hi:
                u_end += p[i]
        n = 0
        for e in range(K * tau):
            if t_lo < key[e] <= t_hi:
                ev_key[n] = key[e]
                ev_id[n] = e
                n += 1
        if n > 0:
            _, order = _radix_sort(ev_key.view(np.uint64), ev_id, tmp_key, tmp_id, n, count)
            acc = u_end
            for r in range(n - 1, -1, -1):
                e = order[r]
                if e % tau == tau - 1:
                    acc += p[e // tau]
                u_before[r] = acc
            for r in range(n):
                e = order[r]
                pending += 1
                if e % tau != tau - 1:
                    continue
                T += pending + _geometric_failures(s, pending, u_before[r])
                pending = 0
                if T > d_max:
                    return
                while x[j] < T:
                    j += 1
                i = e // tau
                if i < kmax:
                    learned_at[i] = j
        if u_end <= 0.0:
            return
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
def _tally(w, learned_at, out, hist, want_p):
    """Loss above L∞ at every grid point (Σ of w over quanta not yet learned there) and,
    if wanted, the histogram of first-learned grid indices."""
    m = out.size
    acc = np.zeros(m + 1)
    for i in range(w.size):
        g = learned_at[i]
        acc[g] += w[i]
        if want_p and g < m:
            hist[g, i] += 1
    run = acc[m]
    for j in range(m - 1, -1, -1):
        out[j] = run
        run += acc[j]


@njit(cache=True)
def _realization(mode, s, p, inv_p, sf, w, x, tau, batch, kmax, D, counts, learned_at, key,
                 ev_key, ev_id, tmp_key, tmp_id, aux, count, out, hist, want_p):
    """One realization of the chosen mode, tallied into ``out`` (and ``hist``)."""
    np.random.seed(np.uint32(s[3] >> uint64(32)))
    if mode == MODE_SAMPLES:
        _one_samples(s, p, inv_p, x, tau, kmax, learned_at, key, ev_key, ev_id, tmp_key,
                     tmp_id, aux, count)
    elif mode == MODE_STEPS:
        _one_steps(s, p, sf, x, batch, tau, kmax, counts, learned_at, aux)
    else:
        _one_noisy_n(s, p, sf, x, D, tau, counts, learned_at, key, ev_id, tmp_key, tmp_id,
                     count)
    _tally(w, learned_at, out, hist, want_p)


@njit(cache=True, parallel=True)
def _simulate(mode, p, sf, w, x, tau, batch, kmax, D, states, want_p, nt):
    """All realizations of one configuration: ``out[r, j]`` is realization r's loss above
    L∞ at grid point j; ``hist[j, i]`` counts realizations that learned quantum i first at
    grid point j (integer sums, so the result does not depend on the thread count).
    ``nt`` is ``numba.get_num_threads()``, passed in (calling it here defeats caching)."""
    K = p.size
    m = x.size
    reps = states.shape[0]
    ke = K * tau if mode == MODE_SAMPLES else K
    counts = np.zeros((nt, K), np.int64)
    learned_at = np.zeros((nt, K), np.int64)
    key = np.zeros((nt, ke))
    ev_key = np.zeros((nt, ke))
    ev_id = np.zeros((nt, ke), np.int64)
    tmp_key = np.zeros((nt, ke), np.uint64)
    tmp_id = np.zeros((nt, ke), np.int64)
    aux = np.zeros((nt, ke))
    count = np.zeros((nt, 65536), np.int64)
    hist = np.zeros((nt, m + 1, K) if want_p else (nt, 1, 1), np.int32)
    out = np.empty((reps, m))
    inv_p = 1.0 / p
    for r in prange(reps):
        t = numba.get_thread_id()
        _realization(mode, states[r].copy(), p, inv_p, sf, w, x, tau, batch, kmax, D,
                     counts[t], learned_at[t], key[t], ev_key[t], ev_id[t], tmp_key[t],
                     tmp_id[t], aux[t], count[t], out[r], hist[t], want_p)
    return out, hist.sum(axis=0)
