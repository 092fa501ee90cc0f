"""Training throughput and the cost of the batched augmentations, measured side by side.

1. Images/s of a full training step (two augmented views, forward, backward, AdamW, and for
   BYOL the EMA update) for BYOL and SimCLR with a ResNet-18 (standard stem, as ``--stem auto``
   picks on CPU), 64-px crops of 5-band stamps, batch 128, and the share of each step spent
   making the two views (target: <= 10%).
2. The batched augmentations (:class:`galexplorer.ssl.augment.AstroAugment`: rotation + flip +
   scale + jitter-crop in one resampling, per-view PSF blur, gain, MAD-scaled noise, asinh
   normalisation) against the same operations done one stamp at a time with
   ``torchvision.transforms.v2`` (RandomHorizontalFlip, RandomAffine, CenterCrop, GaussianBlur,
   then gain, noise and asinh on the tensor), on the same batch (target: >= 5x faster).

Pixels are real: stamps cut from the Hubble XDF image in scikit-image, its three channels plus
two averages as 5 bands.

Run under the bench lock:  flock /tmp/galexplorer-bench.lock python benchmarks/bench_train.py
``--quick`` runs a tiny configuration (batch 16, 32 px) for the smoke test.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np


def xdf_bands(n: int, size: int, bands: int, seed: int = 0) -> np.ndarray:
    """(n, bands, size, size) float32 stamps cut at random places of the XDF image."""
    from galexplorer.data.xdf import xdf_image

    img = xdf_image()                                        # (H, W, 3) in [0, 1]
    extra = [img.mean(axis=2, keepdims=True), img[..., 1:].mean(axis=2, keepdims=True)]
    cube = np.concatenate([img] + extra, axis=2)[..., :bands]
    rng = np.random.default_rng(seed)
    h, w = cube.shape[:2]
    ys = rng.integers(0, h - size, n)
    xs = rng.integers(0, w - size, n)
    out = np.stack([cube[y:y + size, x:x + size] for y, x in zip(ys, xs)])
    return np.ascontiguousarray(np.moveaxis(out, -1, 1), dtype=np.float32)


def band_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    med = np.median(x, axis=(0, 2, 3))
    mad = np.median(np.abs(x - med[None, :, None, None]), axis=(0, 2, 3))
    return med.astype(np.float32), np.maximum(mad, 1e-3).astype(np.float32)


def bench_steps(method: str, x, aug, size: int, steps: int):
    import torch

    from galexplorer.ssl.byol import BYOL
    from galexplorer.ssl.config import TrainConfig
    from galexplorer.ssl.trainer import _build_model, make_optimizer

    cfg = TrainConfig(method=method, stem="standard", image_size=size)
    torch.manual_seed(0)
    model = _build_model(cfg, x.shape[1]).train()
    opt = make_optimizer(model, cfg)
    gen = torch.Generator().manual_seed(0)
    t_aug = t_all = 0.0
    for i in range(steps + 1):                                # the first step warms up
        t0 = time.perf_counter()
        with torch.no_grad():
            v1 = aug(x, gen, normalise=True)
            v2 = aug(x, gen, normalise=True)
        t1 = time.perf_counter()
        loss = model(v1, v2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if isinstance(model, BYOL):
            model.update_target(0.99)
        t2 = time.perf_counter()
        if i:
            t_aug += t1 - t0
            t_all += t2 - t0
    return len(x) * steps / t_all, t_all / steps, t_aug / t_all


def per_sample_pipeline(cfg, size: int, stamp: int, median, mad):
    """The same augmentations, one stamp at a time, with torchvision.transforms.v2."""
    import torch
    from torchvision.transforms import v2

    blur_radius = int(math.ceil(3 * cfg.blur_sigma[1]))
    geometric = v2.Compose([
        v2.RandomHorizontalFlip(),
        v2.RandomAffine(degrees=180, translate=(cfg.jitter_px / stamp, cfg.jitter_px / stamp),
                        scale=cfg.scale_range, interpolation=v2.InterpolationMode.BILINEAR),
        v2.CenterCrop(size),
        v2.GaussianBlur(kernel_size=2 * blur_radius + 1, sigma=(max(cfg.blur_sigma[0], 0.01), cfg.blur_sigma[1])),
    ])
    med = torch.as_tensor(median).view(-1, 1, 1)
    mad_t = torch.as_tensor(mad).view(-1, 1, 1)

    def one(img):
        y = geometric(img)
        gain = torch.empty(len(mad), 1, 1).uniform_(*cfg.gain_range)
        y = med + gain * (y - med)
        k = float(torch.empty(()).uniform_(*cfg.noise_scale))
        y = y + torch.randn_like(y) * k * mad_t
        return torch.asinh((y - med) / mad_t)

    return one


def bench_augment(x, aug, one, repeats: int):
    import torch

    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        aug(x, gen, normalise=True)
        t0 = time.perf_counter()
        for _ in range(repeats):
            aug(x, gen, normalise=True)
            aug(x, gen, normalise=True)
        batched = (time.perf_counter() - t0) / repeats
        one(x[0])
        t0 = time.perf_counter()
        for _ in range(2):                                   # two views
            torch.stack([one(img) for img in x])
        per_sample = time.perf_counter() - t0
    return batched, per_sample


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=64, help="crop fed to the network, px")
    ap.add_argument("--stamp", type=int, default=64, help="stamp side, px")
    ap.add_argument("--bands", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per method (after one warm-up)")
    ap.add_argument("--quick", action="store_true", help="tiny configuration for the smoke test")
    args = ap.parse_args()
    if args.quick:
        args.batch, args.size, args.stamp, args.steps = 16, 32, 32, 1

    import torch

    from galexplorer.ssl.augment import AstroAugment
    from galexplorer.ssl.config import AugmentConfig
    from galexplorer.ssl.runtime import retain_freed_memory

    retain_freed_memory()   # as galexplorer train does; the per-sample reference runs in the same process
    x_np = xdf_bands(args.batch, args.stamp, args.bands)
    median, mad = band_stats(x_np)
    x = torch.from_numpy(x_np)
    cfg = AugmentConfig()
    aug = AstroAugment(cfg, args.size, median, mad)
    print(f"CPU, {torch.get_num_threads()} threads; ResNet-18 (standard stem), {args.bands} bands, "
          f"{args.stamp}-px stamps -> {args.size}-px crops, batch {args.batch}, {args.steps} timed steps")
    for method in ("byol", "simclr"):
        speed, step, share = bench_steps(method, x, aug, args.size, args.steps)
        verdict = "ok" if share <= 0.10 else "ABOVE TARGET"
        print(f"  {method:6s}: {speed:7.1f} images/s ({step:.2f} s per step); augmentation {share:5.1%} "
              f"of the step (target <= 10%: {verdict})")
    one = per_sample_pipeline(cfg, args.size, args.stamp, median, mad)
    batched, per_sample = bench_augment(x, aug, one, repeats=3 if args.quick else 5)
    ratio = per_sample / batched
    print(f"  augmentations, two views of {args.batch} stamps: batched {batched * 1e3:.0f} ms, "
          f"per-sample torchvision.transforms.v2 {per_sample * 1e3:.0f} ms -> {ratio:.1f}x faster "
          f"(target >= 5x: {'ok' if ratio >= 5 else 'BELOW TARGET'})")


if __name__ == "__main__":
    main()
