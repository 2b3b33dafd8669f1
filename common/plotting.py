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



#: mantissas of the minor ticks to label on a short log axis, tried in turn until the
#: labels do not collide (2×, 3× and 5× a power of ten; then fewer)
MINOR_LABELS = ("235", "25", "2", "")


def readable_log_ticks(ax) -> None:
    """On a log axis spanning under two decades whose labels are still matplotlib's
    default, label powers of ten and 2, 3, 5 times them (fewer if those collide at the
    figure's size), as plain numbers where short (0.001 … 10 000). matplotlib labels 2, 3,
    4 and 6 × 10^b there, in that form, and on a narrow figure they collide. Axes set up
    otherwise are left alone."""
    from matplotlib import ticker

    for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        lo, hi = sorted(limits)
        if axis.get_scale() != "log" or not 0 < lo < hi < 100 * lo or \
                type(axis.get_major_formatter()) is not ticker.LogFormatterSciNotation:
            continue
        axis.set_major_formatter(ticker.FuncFormatter(_log_label))
        for marks in MINOR_LABELS:
            axis.set_minor_formatter(ticker.FuncFormatter(
                lambda v, _, marks=marks: _log_label(v) if f"{v:.0e}"[0] in marks else ""))
            if not labels_collide(axis):
                break


def _log_label(value: float, _=None) -> str:
    """'0.2', '30', '5000', or '$2\\times10^{6}$' for numbers too long to write out."""
    if 1e-3 <= value < 1e5:
        return f"{value:g}"
    mantissa, exponent = f"{value:.0e}".split("e")
    head = "" if mantissa == "1" else rf"{mantissa}\times"
    return rf"${head}10^{{{int(exponent)}}}$"


def labels_collide(axis, pad: float = 2.0) -> bool:
    """Whether two of the axis' tick labels (major and minor, inside the view) overlap
    once the figure is laid out (``pad``: pixels they must keep apart)."""
    axis.figure.draw_without_rendering()
    lo, hi = sorted(axis.get_view_interval())
    along = 0 if axis.axis_name == "x" else 1
    spans = sorted((b.x0, b.x1) if along == 0 else (b.y0, b.y1)
                   for t in axis.get_ticklabels() + axis.get_ticklabels(minor=True)
                   if t.get_text() and lo <= t.get_position()[along] <= hi
                   for b in [t.get_window_extent()])
    return any(a1 + pad > b0 for (_, a1), (b0, _) in zip(spans, spans[1:]))
