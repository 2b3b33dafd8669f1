"""Numba kernels of the Monte Carlo: arrays and scalars in, arrays out.

Conventions shared by every kernel (0-based index i is quantum k = i + 1):

- ``p[i]`` the frequencies, ``sf[i] = Σ_{i' ≥ i} p[i']`` their reverse cumulative sum
  (``sf[K] = 0``), summed from the rare end so that tail masses keep full precision;
- ``x`` the grid (samples, steps or numbers of quanta), non-decreasing int64;
- ``learned_at[i]``: the first grid index at which quantum i is learned (``m`` = never);
- one realization per ``prange`` iteration with its own generator state ``states[r]``
  (xoshiro256**, seeded from ``SeedSequence.spawn``; large-mean binomials and Poisson
  totals use Numba's BTPE and PTRS, whose per-thread generator is reseeded from the same
  state at the start of each realization). Realization r gets the same numbers whatever
  the thread count.

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


# --- sorting: LSD radix sort of non-negative doubles (their bits order like the values) --

@njit(cache=True)
def _radix_sort(keys, ids, keys2, ids2, n, count):
    """Sort keys[:n] (uint64 bits of non-negative doubles) carrying ids; returns the
    arrays holding the result. LSD radix passes on the top 32 bits (16-bit digits, a pass
    whose digit is constant is skipped), then an insertion sort on all 64 bits, which only
    has to reorder the rare keys agreeing in their top 32 bits (relative gap < 2^-20)."""
    src_k, src_i, dst_k, dst_i = keys, ids, keys2, ids2
    for shift in (32, 48):
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
    for e in range(1, n):
        v = src_k[e]
        if src_k[e - 1] <= v:
            continue
        vi = src_i[e]
        q = e - 1
        while q >= 0 and src_k[q] > v:
            src_k[q + 1] = src_k[q]
            src_i[q + 1] = src_i[q]
            q -= 1
        src_k[q + 1] = v
        src_i[q + 1] = vi
    return src_k, src_i


# --- the three realizations ------------------------------------------------------------

@njit(cache=True)
def _probe(s, r, lam, known_r, known_P, nk):
    """P at event r of the post-learning Poisson process, drawn given its known values:
    between known neighbours a < r < b the count splits binomially in proportion to the
    integrated intensity Λ. Returns (P_r, new number of known points)."""
    pos = 0
    while known_r[pos] < r:
        pos += 1
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


#: Cost of a tail event relative to a head clock (random memory access per event against
#: sequential passes; measured: K = 10^5, α = 0.4, best split near 2·10^4 at D = 10^6,
#: no split at D = 10^7).
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
def _guide(sf, h, K):
    """Guide table for drawing a tail quantum i ≥ h with probability p[i] / sf[h]: for
    u in bucket b of [0, sf[h]) (M = K − h equal buckets), ``guide[b]`` is an index ≥
    the answer max{i : sf[i] > u}, from which a short downward search finds it."""
    M = max(K - h, 1)
    guide = np.empty(M, np.int64)
    i = K - 1
    for b in range(M):
        th = b * sf[h] / M * (1.0 - 1e-14)
        while i > h and sf[i] <= th:
            i -= 1
        guide[b] = i
    return guide


@njit(cache=True, inline="always")
def _draw_tail(s, sf, guide, h):
    """A quantum i ≥ h with probability p[i] / sf[h] (inverse CDF through the guide)."""
    U = _uniform(s)
    M = guide.size
    b = min(int(U * M), M - 1)
    u = U * sf[h]
    i = guide[b]
    while i > h and sf[i] <= u:
        i -= 1
    return i


@njit(cache=True)
def _one_samples(s, p, inv_p, sf, x, tau, kmax, h, guide, learned_at, counts, key, ev_key,
                 ev_id, tmp_key, tmp_id, tail_key, tail_id, merged, lam, count, known_r,
                 known_P, cross):
    """Multi-epoch data: quantum i is learned at grid point j once it occurred τ times
    among the first x[j] samples.

    Embed the sample sequence in a rate-1 Poisson process. Quantum i's first τ occurrences
    come at sums of Exp(p_i) clocks (its τ-th is its learning time); every later occurrence
    of a learned quantum belongs to a Poisson process P of intensity λ(t) = the mass learned
    by t. The sample index of an event at time t is N(t) = (clock events ≤ t) + P(t), so
    quantum i is learned by sample D iff N(its τ-th clock) ≤ D. After sorting the clocks
    (radix sort), P is drawn only where needed: its total by the window's end, then by
    binomial splits (given P at two times, the count between splits in proportion to
    ∫λ) during a binary search for each grid point's crossing. Clocks are sorted window
    by window of Poisson time.

    Only the h head quanta get clocks drawn; the tail i ≥ h (rarely hit by the largest
    grid point) is generated as one Poisson process of rate sf[h] over the window, each
    event assigned to quantum i with probability p[i] / sf[h] (``_draw_tail``): its first
    τ events per quantum are that quantum's clocks (already in time order, merged with
    the sorted head clocks), later ones are dropped (P stands for them, by the strong
    Markov property). Exact; costs O(h τ + tail events) per realization, O(Kτ) at most.
    Returns the number of tail clocks (their ids stay in ``tail_id`` for the tally).
    """
    K = p.size
    m = x.size
    for i in range(h):
        t = 0.0
        for r in range(tau):
            t += _exponential(s) * inv_p[i]
            key[i * tau + r] = t
    learned_at[:h] = m
    d_max = float(x[m - 1])
    t_lo = 0.0
    t_hi = _window_end(d_max)
    rate_tail = sf[h] if h < K else 0.0
    tail_left = 0
    if rate_tail > 0.0:
        for i in range(K - 1, h - 1, -1):
            if p[i] > 0.0:
                tail_left += 1  # tail quanta not yet learned (of positive mass)
    nt = 0         # tail clocks so far (all windows)
    before = 0.0   # samples N(t_lo) before the window
    mass = 0.0     # learned mass at t_lo (intensity of P)
    j0 = 0         # first grid point not yet resolved
    while True:
        n = 0
        left = 0.0  # unlearned head mass at the end of the window, from the rare end
        for i in range(h - 1, -1, -1):
            if key[i * tau + tau - 1] > t_hi:
                left += p[i]
        for e in range(h * tau):
            if t_lo < key[e] <= t_hi:
                ev_key[n] = key[e]
                ev_id[n] = e
                n += 1
        order = ev_id
        sorted_key = ev_key
        if n > 0:
            sk, order = _radix_sort(ev_key.view(np.uint64), ev_id, tmp_key, tmp_id, n, count)
            sorted_key = sk.view(np.float64)
        if rate_tail > 0.0:
            nt0 = nt
            t = t_lo
            inv_rate = 1.0 / rate_tail
            while True:
                t += _exponential(s) * inv_rate
                if t > t_hi:
                    break
                i = _draw_tail(s, sf, guide, h)
                c = counts[i]
                if c < tau:
                    counts[i] = c + 1
                    if c == tau - 1:
                        tail_left -= 1
                    e = i * tau + c
                    key[e] = t
                    tail_key[nt] = t
                    tail_id[nt] = e
                    nt += 1
            a, b, r = 0, nt0, 0
            while a < n and b < nt:
                if sorted_key[a] <= tail_key[b]:
                    merged[r] = order[a]
                    a += 1
                else:
                    merged[r] = tail_id[b]
                    b += 1
                r += 1
            while a < n:
                merged[r] = order[a]
                a += 1
                r += 1
            while b < nt:
                merged[r] = tail_id[b]
                b += 1
                r += 1
            order = merged
            n = r
        # integrated intensity of P from t_lo to each event, and to t_hi
        acc, t_prev, rate = 0.0, t_lo, mass
        for r in range(n):
            e = order[r]
            t = key[e]
            acc += rate * (t - t_prev)
            lam[r] = acc
            t_prev = t
            if e % tau == tau - 1:
                rate += p[e // tau]
        lam[n] = acc + rate * (t_hi - t_prev)
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
            hi = n  # N(event hi) > x[j] is known for hi = n (the window's end)
            while lo < hi:
                mid = (lo + hi) >> 1
                Pm, nk = _probe(s, mid, lam, known_r, known_P, nk)
                if before + mid + 1 + Pm <= x[j]:
                    lo = mid + 1
                else:
                    hi = mid
            cross[j] = lo
            j += 1
        for jj in range(j, m):
            cross[jj] = n  # beyond the window: all its events come first
        g = j0
        for r in range(n):
            e = order[r]
            if e % tau != tau - 1:
                continue
            while g < m and cross[g] <= r:
                g += 1
            i = e // tau
            if i < kmax and g < m:
                learned_at[i] = g
        j0 = j
        if j0 >= m or (left <= 0.0 and tail_left <= 0):
            return nt
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
def _tally(w, learned_at, out, hist, want_p, h, w_tail, tail_id, nt, tau, counts):
    """Loss above L∞ at every grid point (Σ of w over quanta not yet learned there) and,
    if wanted, the histogram of first-learned grid indices. Quanta i < h are read from
    ``learned_at``; the tail i ≥ h (mass ``w_tail``) only through its ``nt`` clocks in
    ``tail_id``, whose ``counts`` and ``learned_at`` entries are reset here."""
    m = out.size
    acc = np.zeros(m + 1)
    for i in range(h):
        g = learned_at[i]
        acc[g] += w[i]
        if want_p and g < m:
            hist[i, g] += 1
    acc[m] += w_tail
    for q in range(nt):
        e = tail_id[q]
        i = e // tau
        if e % tau == 0:
            counts[i] = 0
        if e % tau == tau - 1:
            g = learned_at[i]
            if g < m:
                acc[g] += w[i]
                acc[m] -= w[i]
                if want_p:
                    hist[i, g] += 1
                learned_at[i] = m
    run = acc[m]
    for j in range(m - 1, -1, -1):
        out[j] = run
        run += acc[j]


@njit(cache=True)
def _realization(mode, s, p, inv_p, sf, w, x, tau, batch, kmax, D, h, guide, w_tail, counts,
                 learned_at, key, ev_key, ev_id, tmp_key, tmp_id, tail_key, tail_id, merged,
                 aux, count, known_r, known_P, cross, out, hist, want_p):
    """One realization of the chosen mode, tallied into ``out`` (and ``hist``)."""
    np.random.seed(np.uint32(s[3] >> uint64(32)))
    nt = 0
    if mode == MODE_SAMPLES:
        nt = _one_samples(s, p, inv_p, sf, x, tau, kmax, h, guide, learned_at, counts, key,
                          ev_key, ev_id, tmp_key, tmp_id, tail_key, tail_id, merged, aux,
                          count, known_r, known_P, cross)
    elif mode == MODE_STEPS:
        _one_steps(s, p, sf, x, batch, tau, kmax, counts, learned_at, aux)
    else:
        _one_noisy_n(s, p, sf, x, D, tau, counts, learned_at, key, ev_id, tmp_key, tmp_id,
                     count)
    _tally(w, learned_at, out, hist, want_p, h, w_tail, tail_id, nt, tau, counts)


@njit(cache=True, parallel=True)
def _simulate(mode, p, sf, w, x, tau, batch, kmax, D, states, want_p, nt):
    """All realizations of one configuration: ``out[r, j]`` is realization r's loss above
    L∞ at grid point j; ``hist[j, i]`` counts realizations that learned quantum i first at
    grid point j (integer sums, so the result does not depend on the thread count; kept
    per thread as K × (m+1), so that a realization's writes, in order of i, are local).
    ``nt`` is ``numba.get_num_threads()``, passed in (calling it here defeats caching).
    The data kernel's head/tail split h (``_split``) depends on the configuration only."""
    K = p.size
    m = x.size
    reps = states.shape[0]
    ke = K * tau if mode == MODE_SAMPLES else K
    h = _split(p, sf, tau, _window_end(float(x[m - 1]))) if mode == MODE_SAMPLES else K
    guide = _guide(sf, h, K)
    w_tail = 0.0
    for i in range(K - 1, h - 1, -1):
        w_tail += w[i]
    kt = (K - h) * tau if h < K else 1
    counts = np.zeros((nt, K), np.int64)
    learned_at = np.full((nt, K), m, np.int64)
    key = np.zeros((nt, ke))
    ev_key = np.zeros((nt, ke))
    ev_id = np.zeros((nt, ke), np.int64)
    tmp_key = np.zeros((nt, ke), np.uint64)
    tmp_id = np.zeros((nt, ke), np.int64)
    tail_key = np.zeros((nt, kt))
    tail_id = np.zeros((nt, kt), np.int64)
    merged = np.zeros((nt, ke if h < K else 1), np.int64)
    aux = np.zeros((nt, ke + 1))
    count = np.zeros((nt, 65536), np.int64)
    known_r = np.zeros((nt, 2 + 64 * (m + 1)), np.int64)
    known_P = np.zeros((nt, 2 + 64 * (m + 1)), np.int64)
    cross = np.zeros((nt, m), np.int64)
    hist = np.zeros((nt, K, m + 1) if want_p else (nt, 1, 1), np.int32)
    out = np.empty((reps, m))
    inv_p = 1.0 / p
    for r in prange(reps):
        t = numba.get_thread_id()
        _realization(mode, states[r].copy(), p, inv_p, sf, w, x, tau, batch, kmax, D, h,
                     guide, w_tail, counts[t], learned_at[t], key[t], ev_key[t], ev_id[t],
                     tmp_key[t], tmp_id[t], tail_key[t], tail_id[t], merged[t], aux[t],
                     count[t], known_r[t], known_P[t], cross[t], out[r], hist[t], want_p)
    return out, hist.sum(axis=0).T
