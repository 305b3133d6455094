"""Final train and test accuracy of every optimiser at its default learning rate, over seeds.

    python scripts/optimisers.py [--seeds 3] [--epochs 20] [--out figures]

Depth-8, width-128 relu MLP on digits (batch 8, learning rate ×0.9 per epoch), each optimiser at its
default (``trust.core.train.DEFAULT_LR``), plus low-precision Madam at 12, 8 and 6 bits. Fewer bits at the
authors' base precision 0.001 would shrink the dynamic range to e^{0.001·255} ≈ 1.3 (8 bits); here the
range is held at e^{4.095} ≈ 60 — ``base_lr = 4.095/(levels−1)`` (:func:`trust.core.optim.lns_base`) — and
``lr_factor = 0.01/base_lr`` keeps the multiplicative step of Madam's η = 0.01, so only the resolution changes. Writes
``<out>/optimisers.md`` and ``<out>/optimisers.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from trust.base import store
from trust.core import optim
from trust.core.train import OPTIMIZERS, TrainConfig, train


def configs(epochs: int) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {name: {"optimizer": name} for name in OPTIMIZERS}
    rows["madam_lns"]["bits"] = 12
    for bits in (8, 6):
        base_lr = optim.lns_base(bits)
        rows[f"madam_lns {bits}-bit"] = {
            "optimizer": "madam_lns",
            "bits": bits,
            "base_lr": base_lr,
            "learning_rate": 0.01 / base_lr,
        }
    return {k: dict(v, depth=8, width=128, epochs=epochs, checkpoints=()) for k, v in rows.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", default="figures")
    args = parser.parse_args(argv)
    table: dict[str, dict[str, Any]] = {}
    jobs = [(name, cfg, seed) for name, cfg in configs(args.epochs).items() for seed in range(args.seeds)]
    for name, cfg, seed in tqdm(jobs, desc="optimisers × seeds", unit="run"):
        config = TrainConfig.from_dict(dict(cfg, seed=seed))
        c = train(config, progress=False).curves
        row = table.setdefault(
            name,
            {
                "config": config.to_dict(),
                "lr": config.lr,
                "train_acc": [],
                "test_acc": [],
                "best_test_acc": [],
                "clip_fraction": [],
            },
        )
        row["best_test_acc"].append(max(c.test_acc))
        row["train_acc"].append(c.train_acc[-1])
        row["test_acc"].append(c.test_acc[-1])
        row["clip_fraction"].append(c.clip_fraction[-1])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store.write_json(out / "optimisers.json", table)
    lines = [
        f"Depth 8, width 128, digits, {args.epochs} epochs, batch 8, lr ×0.9/epoch; mean ± std over "
        f"{args.seeds} seeds (`python -m trust.experiments.optimisers --seeds {args.seeds}`).",
        "",
        "| optimiser | learning rate | final train accuracy | final test accuracy | best test accuracy over epochs "
        "| weights at Madam's clip |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in table.items():
        tr, te, best, clip = (np.array(row[k]) for k in ("train_acc", "test_acc", "best_test_acc", "clip_fraction"))
        lr = f"lr_factor {row['lr']:.3g}, base {row['config']['base_lr']:.3g}" if "lns" in name else f"{row['lr']:g}"
        clip_s = "—" if np.isnan(clip).all() else f"{100 * clip.mean():.2f} %"
        lines.append(
            f"| {name} | {lr} | {100 * tr.mean():.2f} ± {100 * tr.std():.2f} % | "
            f"{100 * te.mean():.2f} ± {100 * te.std():.2f} % | "
            f"{100 * best.mean():.2f} ± {100 * best.std():.2f} % | {clip_s} |"
        )
    store.write_text(out / "optimisers.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
