"""Quanta discovery from gradients (QDG, Michaud et al. 2023, section 5): per-sample
gradients, their angular affinity, spectral clustering over several K, α from cluster sizes
with several estimators, their bias on toy embeddings, and QDG on sparse-parity runs."""
from .clustering import (QDGClustering, QDGClusteringSweep, cluster_sizes,
                         laplacian_embedding)
from .estimators import ESTIMATORS, AlphaEstimate, envelope, estimate_alpha, estimate_all, zipf_mle
from .gradients import (LinearGradientFactors, cross_entropy_loss, linear_gradient_factors,
                        log_cross_entropy_loss, per_sample_gradients, per_sample_gradients_loop,
                        select_parameters)
from .similarity import angular_affinity, cosine_similarity, normalize_rows
from .toy import (apply_calibration, bias_report, bias_study, calibrate, run_toy,
                  summarize_bias, toy_embeddings)

__all__ = ["QDGClustering", "QDGClusteringSweep", "cluster_sizes", "laplacian_embedding",
           "ESTIMATORS",
           "AlphaEstimate", "envelope", "estimate_alpha", "estimate_all", "zipf_mle",
           "LinearGradientFactors", "linear_gradient_factors", "per_sample_gradients",
           "cross_entropy_loss", "log_cross_entropy_loss",
           "per_sample_gradients_loop", "select_parameters",
           "angular_affinity", "cosine_similarity", "normalize_rows", "apply_calibration",
           "bias_report", "bias_study", "calibrate", "run_toy", "summarize_bias",
           "toy_embeddings"]
