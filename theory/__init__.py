"""Closed-form predictions of the Quantization Model of Neural Scaling.

Convention: ``alpha`` is the paper's α; quantum k is used with frequency
p_k = k^-(α+1) / ζ(α+1) (or the generalised harmonic number for finite K).
"""
