"""PyTorch experiments: multitask sparse parity training and quanta discovery from gradients."""
