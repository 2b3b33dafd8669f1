"""The plotting convention of every layer: a plot function takes ``ax=None``, draws only
there and returns the Axes; only the command line saves files."""
from __future__ import annotations


def axes(ax=None):
    """``ax``, or the Axes of a new figure when ``ax`` is None (pyplot imported lazily)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5.5, 4))[1]
