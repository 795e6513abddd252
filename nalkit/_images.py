"""Image bytes, without matplotlib: the palette re-encoding that keeps the executed notebooks of the run records
small. Kept apart from :mod:`nalkit.plotting` so that the run record (:mod:`nalkit.records`) needs no plotting code."""

from __future__ import annotations


def compact_png(png: bytes, colors: int = 32) -> bytes:
    """``png`` re-encoded with a palette of at most ``colors`` colours (a line plot needs few): about a quarter
    of the bytes of matplotlib's RGBA PNG at the same size, for the executed notebooks committed with every run.
    A PNG that is already a palette image comes back unchanged."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png))
    if image.mode == "P":
        return png
    quantized = image.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    quantized.save(out, format="PNG", optimize=True)
    return out.getvalue() if len(out.getvalue()) < len(png) else png
