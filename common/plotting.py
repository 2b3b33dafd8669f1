"""The plotting convention of every layer: a plot function takes ``ax=None``, draws only
there and returns the Axes; only the command line saves files."""
from __future__ import annotations

#: The size (inches) of a figure a plot function makes for itself.
FIGSIZE = (5.5, 4.0)


def axes(ax=None, figsize=FIGSIZE):
    """``ax``, or the Axes of a new ``figsize`` figure when ``ax`` is None (pyplot imported
    lazily, so that importing a plotting module costs nothing)."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]
