"""Plot plumbing shared by every PNG kerasrnn writes (training curves, forecasts, benchmarks)."""

from __future__ import annotations

import os

from kerasrnn import atomic


def pyplot():
    """`matplotlib.pyplot` on the non-interactive Agg backend (no display needed)."""
    import matplotlib  # lazy: heavy import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy import

    return plt


def save_png(fig, target: str | os.PathLike) -> None:
    """Lay out `fig`, write it to `target` as a PNG atomically (100 dpi), and close it."""
    fig.tight_layout()
    with atomic.atomic_file(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    pyplot().close(fig)
