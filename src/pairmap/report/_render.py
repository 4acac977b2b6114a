"""Figure -> SVG text (with hover names) and PNG bytes."""

from __future__ import annotations

import io
import logging
import xml.etree.ElementTree as ET

logger = logging.getLogger(__name__)

_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", _SVG_NS)
ET.register_namespace("xlink", _XLINK_NS)


def _labelled_artists(fig) -> list:
    found = []
    for ax in fig.axes:
        for artist in [*ax.collections, *ax.lines]:
            labels = getattr(artist, "pairmap_labels", None)
            if labels:
                found.append((artist, list(labels)))
    return found


def _add_titles(svg_text: str, gids: dict) -> str:
    """Give each drawn point of the artists in ``gids`` (gid -> labels) an SVG <title>."""
    root = ET.fromstring(svg_text)
    for group in root.iter(f"{{{_SVG_NS}}}g"):
        labels = gids.get(group.get("id"))
        if labels is None:
            continue
        shapes = [
            el
            for el in _iter_outside_defs(group)
            if el.tag in (f"{{{_SVG_NS}}}use", f"{{{_SVG_NS}}}path")
        ]
        if len(labels) == 1 and shapes:
            shapes = [group]  # one name for the whole artist (e.g. a line)
        elif len(shapes) != len(labels):
            logger.debug(
                "hover names skipped for %s: %d shapes, %d names",
                group.get("id"),
                len(shapes),
                len(labels),
            )
            continue
        for el, label in zip(shapes, labels, strict=True):
            title = ET.Element(f"{{{_SVG_NS}}}title")
            title.text = label
            el.insert(0, title)
    return ET.tostring(root, encoding="unicode")


def _iter_outside_defs(element):
    for child in element:
        if child.tag == f"{{{_SVG_NS}}}defs":
            continue
        yield child
        yield from _iter_outside_defs(child)


def figure_svg(fig, prefix: str) -> str:
    """The figure as SVG text: text kept as text, ids unique per ``prefix``, hover names.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    prefix : str
        Makes the SVG's internal ids unique when several figures share one page.

    Returns
    -------
    str
        An ``<svg>`` element (no XML declaration), ready to inline in HTML.

    Examples
    --------
    >>> from pairmap.plotting import plot_map_scatter
    >>> import pandas as pd
    >>> fig = plot_map_scatter(pd.DataFrame({"cpd": ["a"], "mean_average_precision": [0.9],
    ...                                      "corrected_p_value": [0.01]}))
    >>> svg = figure_svg(fig, "f1")
    >>> svg.startswith("<svg") and "<title>a</title>" in svg
    True
    """
    import matplotlib

    gids = {}
    for i, (artist, labels) in enumerate(_labelled_artists(fig)):
        gid = f"{prefix}-pts{i}"
        artist.set_gid(gid)
        gids[gid] = labels
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg")  # figures are laid out already (tight_layout)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    return _add_titles(text, gids) if gids else text


def figure_png(fig, dpi: int = 144) -> bytes:
    """The figure as PNG bytes.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> figure_png(Figure(figsize=(1, 1)))[:4]
    b'\\x89PNG'
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
