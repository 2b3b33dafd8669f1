"""Scaling-law fitting with bootstrap error bars, checked against the quantization model."""
