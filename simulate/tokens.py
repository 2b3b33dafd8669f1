"""Per-token loss matrices under the quantization model: ground truth for ``fit.tokens``.

A language model's per-token losses, tokens × models (or × checkpoints of one model), as
the quantization model makes them (Michaud et al. 2023, §2 and §5):

- quanta k = 1..K are used with Zipf frequencies p_k ∝ k^-(α+1) (``theory.frequencies``);
- a *flat* token is helped by no quantum (its loss stays at its high level);
- a *monogenic* token needs one quantum k: its loss drops from its high level ``hi`` to its
  low level ``lo`` at the first model that knows k;
- a *polygenic* token needs several quanta (``genes``), each carrying an equal share of
  ``hi − lo``: its loss falls step by step, gradually;
- a model of N parameters knows the ⌊N/C⌋ most frequent quanta (``theory.capacity``); a
  checkpoint at step S knows the quanta seen at least τ times in S steps of ``batch``
  samples, k with S·batch·p_k ≥ τ (learning in order of frequency), capped by a capacity;
- noise: each loss is multiplied by exp(noise·ε) (ε standard normal, one per entry) and
  by exp(doc_noise·δ) (δ one per document, shared by its tokens and every model).

The quanta a learnable token needs are drawn from the Zipf law restricted to ranks above
``first_rank`` (default: the quanta the smallest model or earliest checkpoint already
knows), i.e. the tokens sampled are those the first column has not solved. The mean loss
then falls as E + A·N^-α (the restriction only renormalises the tail), and the sizes at
which monogenic tokens drop have the density ∝ N^-(α+1).

Tokens come in blocks of whole documents, each block with its own seed
(``SeedSequence(seed, spawn_key=(block,))``): the matrix does not depend on how it is
streamed, and 10^7 tokens can be written chunk by chunk without holding them in memory.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Iterator

import numpy as np

import theory
from common import resources
from common.errors import InputError

#: Non-embedding parameter counts of the Pythia models the paper used (pythia-19m …
#: pythia-13b, step 143000): total − embed_in − embed_out, as computed by the paper's
#: experiments/pythia-0/get_num_params.py and printed in its
#: notebooks/ten-million-scaling-curves.ipynb (repository ejmichaud/quantization-model).
#: The paper's per-token matrix has the first seven (19M to 6.4B).
PYTHIA_NON_EMBEDDING = {
    "pythia-19m": 18_915_328, "pythia-125m": 85_056_000, "pythia-350m": 302_311_424,
    "pythia-800m": 805_736_448, "pythia-1.3b": 1_208_602_624,
    "pythia-2.7b": 2_517_652_480, "pythia-6.7b": 6_444_163_072,
    "pythia-13b": 11_327_027_200,
}
PYTHIA_SIZES = tuple(float(v) for v in PYTHIA_NON_EMBEDDING.values())

KINDS = ("flat", "monogenic", "polygenic")
#: Tokens per generated block are a whole number of documents, at least this many tokens.
BLOCK_TOKENS = 1 << 16


@dataclasses.dataclass(frozen=True)
class TokenConfig:
    """Everything that defines a generated matrix (saved with it).

    ``sizes`` (parameters) or ``steps`` (checkpoints), exactly one. ``C``: parameters per
    quantum (default: the smallest size / 300, so the first model knows 300 quanta and
    sums over ranks are close to their integrals).
    Steps: quantum k is learned at step τ/(batch·p_k), by a model of ``size`` parameters
    (None: unlimited capacity). ``genes``: the polygenic tokens' number of quanta, an
    integer drawn uniformly from this inclusive range. Levels: ``hi`` and ``lo`` per token
    are log-normal around ``loss_unlearned`` and ``loss_learned`` with log-sd ``spread``.
    """
    n_tokens: int = 100_000
    sizes: tuple | None = PYTHIA_SIZES[:7]
    steps: tuple | None = None
    alpha: float = 0.4
    C: float | None = None
    n_quanta: int = 1_000_000
    monogenic: float = 0.5
    flat: float = 0.2
    genes: tuple = (6, 20)
    first_rank: int | None = None
    loss_unlearned: float = 4.0
    loss_learned: float = 0.05
    spread: float = 0.3
    noise: float = 0.1
    doc_noise: float = 0.05
    doc_length: int = 512
    tau: float = 10.0
    batch: float = 1000.0
    size: float | None = None
    seed: int = 0

    @property
    def axis(self) -> str:
        return "sizes" if self.steps is None else "steps"

    @property
    def x(self) -> np.ndarray:
        return np.asarray(self.sizes if self.steps is None else self.steps, float)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_config(cfg: TokenConfig) -> TokenConfig:
    """Refuse an unusable configuration in one line (naming the field)."""
    if (cfg.sizes is None) == (cfg.steps is None):
        raise InputError("give exactly one of sizes (a model family) or steps (checkpoints)")
    x = np.asarray(cfg.x, float)
    if x.ndim != 1 or x.size < 3 or not np.all(np.isfinite(x)) or np.any(x <= 0) \
            or np.any(np.diff(x) <= 0):
        raise InputError(f"{cfg.axis}: need at least 3 positive, increasing values")
    if not (isinstance(cfg.n_tokens, (int, np.integer)) and cfg.n_tokens >= 1):
        raise InputError(f"n_tokens must be an integer >= 1, got {cfg.n_tokens!r}")
    for name in ("monogenic", "flat"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise InputError(f"{name} is a fraction in [0, 1], got {getattr(cfg, name)!r}")
    lo, hi = cfg.genes
    if not 2 <= lo <= hi:
        raise InputError(f"genes: a polygenic token needs 2 <= min <= max quanta, got {cfg.genes}")
    for name in ("alpha", "loss_unlearned", "loss_learned", "tau", "batch"):
        if not (getattr(cfg, name) > 0 and np.isfinite(getattr(cfg, name))):
            raise InputError(f"{name} must be a finite number > 0, got {getattr(cfg, name)!r}")
    for name in ("spread", "noise", "doc_noise"):     # log-sds: exp(sd²/2) must stay finite
        if not 0 <= getattr(cfg, name) <= 10:
            raise InputError(f"{name} (a log-normal sd) must lie in [0, 10], got "
                             f"{getattr(cfg, name)!r}")
    if cfg.loss_learned >= cfg.loss_unlearned:
        raise InputError("loss_learned must be below loss_unlearned")
    if cfg.doc_length < 1:
        raise InputError(f"doc_length must be >= 1, got {cfg.doc_length!r}")
    if cfg.first_rank is not None and not 0 <= cfg.first_rank < cfg.n_quanta:
        raise InputError(f"first_rank must lie in [0, n_quanta), got {cfg.first_rank!r}")
    return cfg


def quanta_known(cfg: TokenConfig) -> np.ndarray:
    """How many of the most frequent quanta each column knows: ⌊N/C⌋ for sizes; for steps
    the k with S·batch·p_k ≥ τ, capped by ⌊size/C⌋ and by K."""
    K = cfg.n_quanta
    if cfg.axis == "sizes":
        n = theory.capacity(cfg.x, parameters_per_quantum(cfg))
    else:
        p = theory.frequencies(cfg.alpha, K)
        # p is decreasing, so the count of k with p_k ≥ τ/(S·batch) is a search
        n = np.searchsorted(-p, -cfg.tau / (cfg.x * cfg.batch), side="right").astype(float)
        if cfg.size is not None:
            n = np.minimum(n, theory.capacity(cfg.size, parameters_per_quantum(cfg)))
    return np.minimum(np.asarray(n, float), K).astype(np.int64)


def parameters_per_quantum(cfg: TokenConfig) -> float:
    """C: the configured one, or (sizes) the smallest size / 300; (steps) the size / K."""
    if cfg.C is not None:
        return float(cfg.C)
    if cfg.axis == "sizes":
        return float(cfg.x[0]) / 300.0
    return float(cfg.size) / cfg.n_quanta if cfg.size is not None else 1.0


def first_rank(cfg: TokenConfig) -> int:
    """Quanta are drawn above this rank (default: those the first column knows)."""
    return int(quanta_known(cfg)[0]) if cfg.first_rank is None else int(cfg.first_rank)


def emergence_x(cfg: TokenConfig, k) -> np.ndarray:
    """The size (k·C) or step (τ/(batch·p_k)) at which quantum k is learned (inf where a
    capacity never allows it)."""
    k = np.asarray(k, float)
    if cfg.axis == "sizes":
        return k * parameters_per_quantum(cfg)
    p = theory.frequencies(cfg.alpha, cfg.n_quanta, np.maximum(k, 1))
    out = cfg.tau / (cfg.batch * p)
    if cfg.size is not None:
        out = np.where(k <= theory.capacity(cfg.size, parameters_per_quantum(cfg)), out,
                       np.inf)
    return out


@dataclasses.dataclass
class TokenBlock:
    """One block of generated tokens: losses (tokens × columns, float32), metadata and the
    truth behind them."""
    losses: np.ndarray
    metadata: dict          # document, token, position, frequency
    truth: dict             # kind (0 flat, 1 monogenic, 2 polygenic), quantum, emergence


class _Zipf:
    """Inverse-CDF sampler of ranks first_rank < k ≤ K with p_k ∝ k^-(α+1)."""

    def __init__(self, cfg: TokenConfig):
        self.p = theory.frequencies(cfg.alpha, cfg.n_quanta)
        lo = first_rank(cfg)
        self.offset = lo
        self.cdf = np.cumsum(self.p[lo:])
        self.cdf /= self.cdf[-1]

    def draw(self, rng, shape) -> np.ndarray:
        u = rng.random(shape)
        return np.searchsorted(self.cdf, u, side="right").clip(max=self.cdf.size - 1) \
            + self.offset + 1


def _block_tokens(cfg: TokenConfig) -> int:
    docs = max(1, -(-BLOCK_TOKENS // cfg.doc_length))
    return docs * cfg.doc_length


def _block(cfg, zipf, known, b: int, start: int, count: int) -> TokenBlock:
    """Tokens start … start+count−1 of block b (whole documents from the block's start)."""
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(b,)))
    u = rng.random(count)
    kind = np.where(u < cfg.flat, 0, np.where(u < cfg.flat + (1 - cfg.flat) * cfg.monogenic,
                                              1, 2)).astype(np.int8)
    g_lo, g_hi = cfg.genes
    n_genes = np.where(kind == 2, rng.integers(g_lo, g_hi + 1, size=count), 1)
    genes = np.zeros((count, g_hi), np.int64)
    genes[:, 0] = zipf.draw(rng, count)
    poly = np.flatnonzero(kind == 2)
    genes[poly, 1:] = zipf.draw(rng, (poly.size, g_hi - 1))
    used = np.arange(g_hi)[None, :] < n_genes[:, None]
    # share of the token's quanta still unknown at each column (flat tokens: all): count
    # the genes by the first column that knows them, then accumulate over columns
    m = known.size
    at = np.searchsorted(known, genes, side="left") + (m + 1) * np.arange(count)[:, None]
    learned = np.bincount(at[used], minlength=count * (m + 1)).reshape(count, m + 1)
    share = 1.0 - np.cumsum(learned[:, :m], axis=1) / n_genes[:, None]
    share[kind == 0] = 1.0
    hi = cfg.loss_unlearned * np.exp(cfg.spread * rng.standard_normal(count))
    lo = cfg.loss_learned * np.exp(cfg.spread * rng.standard_normal(count))
    clean = lo[:, None] + (hi - lo)[:, None] * share
    index = start + np.arange(count)
    document = index // cfg.doc_length
    doc_effect = rng.standard_normal(int(document[-1] - document[0]) + 1)
    log_noise = cfg.noise * rng.standard_normal(clean.shape) \
        + cfg.doc_noise * doc_effect[document - document[0]][:, None]
    losses = (clean * np.exp(log_noise)).astype(np.float32)
    quantum = np.where(used, genes, np.iinfo(genes.dtype).max).min(1)
    first = np.searchsorted(known, quantum, side="left")      # first column knowing it
    emergence = np.where(kind == 1, first, -1)
    meta = {"document": document, "token": quantum, "position": index % cfg.doc_length,
            "frequency": zipf.p[quantum - 1]}
    truth = {"kind": kind, "quantum": quantum, "emergence": emergence,
             "n_genes": n_genes, "clean": clean.astype(np.float32)}
    return TokenBlock(losses, meta, truth)


def iter_tokens(config: TokenConfig) -> Iterator[TokenBlock]:
    """The matrix block by block (whole documents, about 65 536 tokens each)."""
    cfg = check_config(config)
    zipf, known = _Zipf(cfg), quanta_known(cfg)
    size = _block_tokens(cfg)
    for b, start in enumerate(range(0, cfg.n_tokens, size)):
        yield _block(cfg, zipf, known, b, start, min(size, cfg.n_tokens - start))


@dataclasses.dataclass
class TokenMatrix:
    """A generated per-token loss matrix with its metadata, truth and configuration."""
    losses: np.ndarray
    x: np.ndarray
    axis: str
    metadata: dict
    truth: dict
    config: TokenConfig

    def save(self, path) -> None:
        """Write an ``.npz`` that ``quanta tokens analyze`` reads: ``losses``, ``sizes`` or
        ``steps``, the metadata arrays, ``truth_*`` arrays and the config as JSON."""
        from common.files import atomic_write

        arrays = {"losses": self.losses, self.axis: self.x, **self.metadata,
                  **{f"truth_{k}": v for k, v in self.truth.items() if k != "clean"},
                  "generator_config": np.array(json.dumps(self.config.to_dict()))}
        atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))


def generate_tokens(config: TokenConfig | None = None, **overrides) -> TokenMatrix:
    """Generate a whole matrix in memory (``iter_tokens`` streams it instead)."""
    cfg = check_config(dataclasses.replace(config or TokenConfig(), **overrides))
    # the blocks and their concatenation: losses (8 bytes a column), metadata and truth
    resources.check_memory(2.0 * cfg.n_tokens * (8 * len(cfg.x) + 96),
                           f"a matrix of {cfg.n_tokens:,} tokens × {len(cfg.x)} columns",
                           "lower n_tokens (or stream it with iter_tokens)")
    blocks = list(iter_tokens(cfg))
    cat = lambda name, key: np.concatenate([getattr(b, name)[key] for b in blocks])  # noqa: E731
    return TokenMatrix(
        losses=np.concatenate([b.losses for b in blocks]), x=cfg.x, axis=cfg.axis,
        metadata={k: cat("metadata", k) for k in blocks[0].metadata},
        truth={k: cat("truth", k) for k in blocks[0].truth}, config=cfg)


def expected_mean_loss(cfg: TokenConfig) -> np.ndarray:
    """The generator's expected mean loss at each column, noise included:
    E[lo] + E[hi − lo]·(flat + (1 − flat)·P(a drawn quantum is unknown)), times the
    noise's mean factor exp((noise² + doc_noise²)/2)."""
    cfg = check_config(cfg)
    known = quanta_known(cfg)
    zipf = _Zipf(cfg)
    cdf = np.concatenate([[0.0], zipf.cdf])
    unknown = 1.0 - cdf[np.clip(known - zipf.offset, 0, cdf.size - 1)]
    level = np.exp(cfg.spread ** 2 / 2)
    hi, lo = cfg.loss_unlearned * level, cfg.loss_learned * level
    share = cfg.flat + (1 - cfg.flat) * unknown
    return (lo + (hi - lo) * share) * np.exp((cfg.noise ** 2 + cfg.doc_noise ** 2) / 2)
