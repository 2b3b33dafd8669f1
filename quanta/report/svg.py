"""matplotlib figures as inline SVG for the page.

Text is drawn as paths (``svg.fonttype = 'path'``), so the page looks the same without
matplotlib's fonts. Each figure gets its own hash salt, so the ids inside different
figures never collide once they share one HTML document, and the output is deterministic.
Dense artists (heat maps, scatter clouds) are rasterized inside the SVG to keep the page
small. Short log axes get readable labels (``common.plotting.readable_log_ticks``): the
page's figures are narrower than the PNGs the commands save.
"""
from __future__ import annotations

import io
import itertools
import re

#: an artist with more elements than this is rasterized inside the SVG
DENSE = 2_000

_serial = itertools.count()
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)


def _rasterize_dense(fig) -> None:
    from matplotlib.collections import Collection, QuadMesh
    from matplotlib.image import AxesImage

    for artist in fig.findobj(lambda a: isinstance(a, (Collection, AxesImage))):
        if isinstance(artist, (QuadMesh, AxesImage)):
            many = isinstance(artist, AxesImage) or artist.get_array() is not None and \
                artist.get_array().size > DENSE / 4
        else:
            many = len(artist.get_offsets()) > DENSE or len(artist.get_paths()) > DENSE
        if many:
            artist.set_rasterized(True)


def to_svg(fig, name: str | None = None) -> str:
    """The figure as an ``<svg>`` element (no XML prolog), then closed."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    from common.plotting import readable_log_ticks

    salt = f"{name or 'figure'}-{next(_serial)}"
    try:
        _rasterize_dense(fig)
        for ax in fig.axes:
            readable_log_ticks(ax)
        buf = io.StringIO()
        with mpl.rc_context({"svg.hashsalt": salt, "svg.fonttype": "path",
                             "svg.image_inline": True}):
            fig.savefig(buf, format="svg", bbox_inches="tight", dpi=110,
                        metadata={"Date": None, "Creator": None})
    finally:
        plt.close(fig)
    text = buf.getvalue()
    # the RDF metadata block names outside vocabularies; the page needs none of it
    return _METADATA.sub("", text[text.index("<svg"):])
