"""What a training run measured, epoch by epoch, and the convergence plots drawn from it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """Per-epoch figures of one run; ``plot`` draws it, alone or beside other runs."""

    label: str = "run"
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def __getitem__(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs]

    def best(self, key: str = "val_acc") -> float:
        return max(self[key]) if key.endswith("acc") else min(self[key])

    def at(self, epoch: int) -> dict:
        """The row of ``epoch`` (1-based), e.g. ``h.at(10)["val_acc"]``."""
        for row in self.epochs:
            if row["epoch"] == epoch:
                return row
        raise KeyError(
            f"{self.label} has no epoch {epoch}: it ran epochs {self['epoch'][:1]}..{self['epoch'][-1:]}"
        )

    def plot(self, *others: "History", axes=None):
        """Loss and accuracy curves (train dashed, validation solid) of this run and ``others``."""
        import matplotlib.pyplot as plt

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(12, 4))
        for h, colour in zip((self, *others), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4):
            x = h["epoch"]
            for ax, key in zip(axes, ("loss", "acc")):
                ax.plot(x, h[f"train_{key}"], "--", color=colour, alpha=0.7, label=f"{h.label} train")
                ax.plot(x, h[f"val_{key}"], "-", color=colour, label=f"{h.label} validation")
                if h.best_epoch is not None:
                    ax.axvline(h.best_epoch, color=colour, ls=":", lw=1)
        axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
        axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
        axes[1].legend(fontsize=8)
        return axes
