"""Pictures of samples: image grids (PNG) and 2-D scatter plots (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from gen_runner.data.images import save_image_grid  # noqa: E402

__all__ = ["scatter_figure", "save_samples_picture"]


def scatter_figure(points: torch.Tensor, reference: torch.Tensor | None = None, title: str = ""):
    """A square scatter plot of 2-D samples, over the reference data (grey) if given."""
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if reference is not None:
        ax.scatter(*reference[:, :2].cpu().T, s=2, c="0.75", alpha=0.5, label="data")
    ax.scatter(*points[:, :2].detach().cpu().T, s=2, c="tab:blue", alpha=0.6, label="samples")
    ax.set_aspect("equal")
    ax.set_title(title)
    if reference is not None:
        ax.legend(loc="upper right", markerscale=4)
    fig.tight_layout()
    return fig


def save_samples_picture(samples: torch.Tensor, path: str | Path, reference: torch.Tensor | None = None,
                         nrow: int | None = None) -> Path:
    """A PNG grid for images in [0, 1] (`nrow` images a row), a scatter plot for 2-D points."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if samples.dim() == 4:
        return save_image_grid(samples.cpu(), path, nrow=nrow)
    fig = scatter_figure(samples, reference)
    fig.savefig(path)
    plt.close(fig)
    return path
