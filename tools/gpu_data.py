#!/usr/bin/env python3
"""A small copy of Fashion-MNIST for the lent GPU machine: the images the CPU-regime runs read, the rest zeroed.

The device tool refuses a working tree over 64 MiB and the full dataset is 30.9 MB. Every run of the CPU regime
(configs/fmnist/cpu.yaml and the grids built on it) reads the same 3,000-image training subset and, with
``data.noisy_val_size``, the same 5,000 validation images (both drawn with ``data.subset_seed``, whatever the
run's seed), and the whole test set. This writes the release's four files with every other training image set
to zeros: the same file names, shapes, indices and labels, so every draw and every noise file is the same as
with the full data, and the training file compresses to about 4 MB. The images kept are checked byte for byte
against the source before the files are written.

    python3 tools/gpu_data.py --out gpu-data                     # -> gpu-data/fashion-mnist/*.gz
    # device tool: carry ["gpu-data"], then in the command:  mkdir -p data && cp -r gpu-data/fashion-mnist data/

``--config``/overrides name other configurations whose images must be kept (the union is kept).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    """``array`` (uint8) as an idx file, gzip level 9 with no timestamp (the same bytes every time)."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def kept_indices(configs: list[tuple[str, list[str]]], labels: np.ndarray) -> np.ndarray:
    """The union, over ``(config file, overrides)``, of the training images a run reads."""
    from nalkit.config import Config
    from nalkit.data import training_images_read

    keep = np.zeros(0, dtype=np.int64)
    for path, overrides in configs:
        keep = np.union1d(keep, training_images_read(Config.load(path, overrides), labels))
    return keep


def make(src: Path, out: Path, configs: list[tuple[str, list[str]]]) -> dict:
    """Write the zero-padded copy of ``src``'s Fashion-MNIST under ``out/fashion-mnist``; returns a summary."""
    from nalkit.datasets.fashion_mnist import _IDX_IMAGES_MAGIC, _IDX_LABELS_MAGIC, _find_fashion_mnist, _idx_file, read_idx

    found = _find_fashion_mnist(src)
    if found is None:
        raise SystemExit(f"no Fashion-MNIST under {src} (make data, or apt-get install dataset-fashion-mnist)")
    images = read_idx(_idx_file(found, FILES[0]), _IDX_IMAGES_MAGIC)
    labels = read_idx(_idx_file(found, FILES[1]), _IDX_LABELS_MAGIC)
    keep = kept_indices(configs, labels)
    small = np.zeros_like(images)
    small[keep] = images[keep]
    if not np.array_equal(small[keep], images[keep]) or small[np.setdiff1d(np.arange(len(images)), keep)].any():
        raise SystemExit("the zero-padded copy does not match its source")  # cannot happen; checked regardless
    target = out / "fashion-mnist"
    target.mkdir(parents=True, exist_ok=True)
    write_idx(target / (FILES[0] + ".gz"), small, _IDX_IMAGES_MAGIC)
    write_idx(target / (FILES[1] + ".gz"), labels, _IDX_LABELS_MAGIC)
    write_idx(target / (FILES[2] + ".gz"), read_idx(_idx_file(found, FILES[2]), _IDX_IMAGES_MAGIC), _IDX_IMAGES_MAGIC)
    write_idx(target / (FILES[3] + ".gz"), read_idx(_idx_file(found, FILES[3]), _IDX_LABELS_MAGIC), _IDX_LABELS_MAGIC)
    summary = {"source": str(found), "kept_training_images": int(len(keep)), "of": int(len(images)),
               "configs": [{"config": c, "overrides": o} for c, o in configs],
               "bytes": {p.name: p.stat().st_size for p in sorted(target.glob("*.gz"))}}
    (target / "KEPT.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--src", default=str(ROOT / "data"), help="where the full Fashion-MNIST is (data.root)")
    p.add_argument("--out", required=True, help="directory to write fashion-mnist/ into")
    p.add_argument("--config", action="append", default=None,
                   help="config file whose images to keep (repeatable; default configs/fmnist/cpu.yaml with and "
                        "without data.noisy_val_size=5000)")
    p.add_argument("overrides", nargs="*", help="overrides applied to every --config")
    args = p.parse_args(argv)
    if args.config:
        configs = [(c, list(args.overrides)) for c in args.config]
    else:
        configs = [(str(ROOT / "configs/fmnist/cpu.yaml"), []),
                   (str(ROOT / "configs/fmnist/cpu.yaml"), ["data.noisy_val_size=5000"])]
    summary = make(Path(args.src), Path(args.out), configs)
    total = sum(summary["bytes"].values())
    print(f"kept {summary['kept_training_images']} of {summary['of']} training images; "
          f"{total / 1e6:.1f} MB in {Path(args.out) / 'fashion-mnist'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
