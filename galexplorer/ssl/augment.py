"""Augmentations of astronomical stamps, batched on tensors (on the GPU when training there).

Every operation works on a whole (B, C, S, S) batch at once with a ``torch.Generator`` so a run
is reproducible and resumable. :class:`AstroAugment` draws the random parameters of one view
(:class:`ViewParams`) and applies, on raw pixel values:

1. :func:`resample` - rotation, flip, scale and jitter-and-crop in a single bilinear
   ``grid_sample`` (one interpolation, not four);
2. :func:`redden` - Galactic extinction, 10**(-0.4 A_b) per band;
3. :func:`gaussian_blur` - a per-view (optionally per-band) Gaussian PSF as two separable
   depthwise convolutions;
4. :func:`scale_gain` - per-band gain jitter around the sky level;
5. :func:`add_noise` - Gaussian noise of sigma = k * MAD_b.

The functions are public so they can be used and tested one by one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import AugmentConfig
from .normalize import asinh_


@dataclass
class ViewParams:
    """Random parameters of one view of a batch of B stamps with C bands.

    Attributes:
        angle: (B,) rotation, radians, counter-clockwise as displayed with the origin at the bottom.
        flip: (B,) bool, mirror left-right before rotating.
        scale: (B,) magnification (> 1 zooms in).
        shift: (B, 2) crop-centre offset (x, y) in input pixels.
        ebv: (B,) E(B-V) in magnitudes, or None.
        blur_sigma: (B, C) Gaussian PSF sigma in output pixels, or None.
        gain: (B, C) multiplicative gain, or None.
        noise_k: (B,) noise level in units of each band's MAD, or None.
    """

    angle: torch.Tensor
    flip: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor
    ebv: torch.Tensor | None = None
    blur_sigma: torch.Tensor | None = None
    gain: torch.Tensor | None = None
    noise_k: torch.Tensor | None = None


def _uniform(n: int | tuple[int, ...], lo: float, hi: float, gen: torch.Generator,
             device: torch.device) -> torch.Tensor:
    shape = (n,) if isinstance(n, int) else n
    return lo + (hi - lo) * torch.rand(shape, generator=gen, device=device)


def resample(x: torch.Tensor, size: int, angle: torch.Tensor | None = None,
             flip: torch.Tensor | None = None, scale: torch.Tensor | None = None,
             shift: torch.Tensor | None = None, padding_mode: str = "reflection") -> torch.Tensor:
    """Rotate, flip, scale and crop a batch in one bilinear resampling.

    The output pixel grid is centred on the crop centre ``(S - size) // 2 + size / 2`` of the
    input (plus ``shift``); with no rotation, flip, scale or shift the result is exactly
    :func:`galexplorer.ssl.normalize.center_crop` (samples fall on pixel centres).

    Args:
        x: (B, C, S, S) float images.
        size: side of the output crop, pixels.
        angle: (B,) radians; a positive angle turns the image counter-clockwise as
            ``torch.rot90(x, 1, dims=(-2, -1))`` does (row 0 at the top).
        flip: (B,) bool, mirror left-right first.
        scale: (B,) magnification; 1.1 shows the central 1/1.1 of the field at 1.1x size.
        shift: (B, 2) float, centre offset (x, y) in input pixels.
        padding_mode: what ``grid_sample`` reads outside the stamp ('reflection' keeps sky-like
            texture at the corners of rotated crops).

    Returns:
        (B, C, size, size) of the input's dtype.
    """
    b, c, h, w = x.shape
    dev, dt = x.device, torch.float32
    if angle is None:
        angle = torch.zeros(b, device=dev)
    cos, sin = torch.cos(angle.to(dt)), torch.sin(angle.to(dt))
    inv = 1.0 / scale.to(dt) if scale is not None else torch.ones(b, device=dev, dtype=dt)
    fx = torch.ones(b, device=dev, dtype=dt)
    if flip is not None:
        fx = torch.where(flip.to(torch.bool), -fx, fx)
    # output = scale(rotate(flip(input))): an output pixel at offset d (pixels, x right, y down)
    # from the crop centre reads the input at centre + F R^-1 S^-1 d, with R turning
    # counter-clockwise on screen, i.e. R^-1 = [[cos, -sin], [sin, cos]] for rows growing down
    a = torch.stack([torch.stack([cos * fx, -sin * fx], -1), torch.stack([sin, cos], -1)], -2) * inv[:, None, None]
    centre = torch.full((b, 2), float((h - size) // 2 + size / 2), device=dev, dtype=dt)
    if shift is not None:
        centre = centre + shift.to(dt)
    # in grid_sample's normalised units (align_corners=False): input u_n = 2u/S - 1 and output
    # d = d_n * size / 2, so u_n = (size/S) A d_n + (2 centre/S - 1). The grid is affine in the
    # output row and column, so it is a sum of two (B, size) outer products; this is several
    # times cheaper on CPU than affine_grid's (B, size^2, 3) x (B, 3, 2) batched product.
    a = a * (size / w)
    t = 2.0 * centre / w - 1.0                                               # (B, 2)
    dn = (torch.arange(size, device=dev, dtype=dt) * 2 + 1) / size - 1       # output pixel centres
    cols = a[:, :, 0, None] * dn[None, None, :] + t[:, :, None]             # (B, 2, size): x_out term
    rows = a[:, :, 1, None] * dn[None, None, :]                              # (B, 2, size): y_out term
    grid = (cols[:, :, None, :] + rows[:, :, :, None]).permute(0, 2, 3, 1).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def gaussian_kernels(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Normalised 1-D Gaussian kernels, one per sigma.

    Args:
        sigma: (...) sigmas in pixels; sigma <= 0.05 gives a delta (no blur).
        radius: half-width; the kernel has 2 * radius + 1 taps.

    Returns:
        (..., 2 * radius + 1) float32 kernels that sum to 1 (so blurring conserves flux).
    """
    t = torch.arange(-radius, radius + 1, device=sigma.device, dtype=torch.float32)
    s = sigma.to(torch.float32).clamp_min(0.05)[..., None]
    k = torch.exp(-0.5 * (t / s) ** 2)
    return k / k.sum(dim=-1, keepdim=True)


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Reflect indices into [0, n) the way ``F.pad(mode='reflect')`` does (edge not repeated)."""
    period = 2 * (n - 1)
    i = torch.remainder(i, period)
    return torch.where(i >= n, period - i, i)


_SELECTORS: dict[tuple, torch.Tensor] = {}


def _selector(n: int, k: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(K, n * n) 0/1 matrix: tap t of output pixel j reads input pixel reflect(j + t - r)."""
    key = (n, k, device, dtype)
    if key not in _SELECTORS:
        r = k // 2
        j = torch.arange(n, device=device)[None, :]                          # output pixel
        src = _reflect(j + torch.arange(-r, r + 1, device=device)[:, None], n)   # (K, n) input pixel
        sel = torch.zeros(k, n * n, device=device, dtype=dtype)
        sel.scatter_add_(1, src * n + j, torch.ones(k, n, device=device, dtype=dtype))
        _SELECTORS[key] = sel
    return _SELECTORS[key]


def blur_matrices(kernels: torch.Tensor, n: int) -> torch.Tensor:
    """Banded (n, n) matrices that convolve a length-n signal with each 1-D kernel, reflecting at
    the borders: ``signal @ M`` is the blurred signal.

    Args:
        kernels: (N, K) with K = 2r + 1 taps, r < n.

    Returns:
        (N, n, n), ``M[b, i, j]`` = weight of input pixel i in output pixel j.
    """
    m, k = kernels.shape
    return (kernels @ _selector(n, k, kernels.device, kernels.dtype)).view(m, n, n)


SHIFT_ADD_MAX_RADIUS = 7   # measured crossover with the banded matrices: r = 8


def _shift_add(xp: torch.Tensor, k: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    """1-D convolution along ``dim`` of an already padded ``xp`` (n + 2r long there) with
    per-(image, band) kernels ``k`` (B, C, 2r + 1, 1, 1), as 2r + 1 fused multiply-adds."""
    y = xp.narrow(dim, 0, n) * k[:, :, 0]
    for t in range(1, k.shape[2]):
        y.addcmul_(xp.narrow(dim, t, n), k[:, :, t])
    return y


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int | None = None) -> torch.Tensor:
    """Convolve each band of each image with its own Gaussian PSF (reflecting borders).

    The separable Gaussian is applied along rows, then columns. For the usual PSF sizes
    (radius <= :data:`SHIFT_ADD_MAX_RADIUS`) each pass is a sum of 2r + 1 shifted copies of the
    reflect-padded batch weighted by each image's kernel tap (fused multiply-adds: 2–3x faster
    on CPU than the banded-matrix products, measured at 128 x 5 x 64 x 64, r = 3); wider kernels
    use two batched products with banded matrices (:func:`blur_matrices`), whose cost does not
    grow with the radius. Both are exact, borders included.

    Args:
        x: (B, C, H, W) float images, square (H = W).
        sigma: (B,) or (B, C) sigma in pixels.
        radius: kernel half-width; default ``ceil(3 * max(sigma))``.

    Returns:
        (B, C, H, W); the total flux of a source away from the border is unchanged.
    """
    b, c, h, w = x.shape
    if sigma.dim() == 1:
        sigma = sigma[:, None].expand(b, c)
    if radius is None:
        radius = int(math.ceil(3.0 * float(sigma.max()))) if sigma.numel() else 0
    radius = min(radius, h - 1, w - 1)
    if radius <= 0:
        return x
    if radius <= SHIFT_ADD_MAX_RADIUS:
        k = gaussian_kernels(sigma, radius).to(x.dtype)[..., None, None]      # (B, C, K, 1, 1)
        # one reflect-padding of both axes: blurring the padded rows along x gives the
        # reflection of the x-blurred image, which is what the pass along y needs
        xp = F.pad(x, (radius, radius, radius, radius), mode="reflect")
        return _shift_add(_shift_add(xp, k, w, dim=-1), k, h, dim=-2)
    if bool((sigma == sigma[:, :1]).all()):
        # one PSF per image (the default): build B matrices, not B*C
        m = blur_matrices(gaussian_kernels(sigma[:, 0], radius).to(x.dtype), w)      # (B, W, W)
        m = m[:, None].expand(b, c, w, w).reshape(b * c, w, w)
    else:
        m = blur_matrices(gaussian_kernels(sigma.reshape(-1), radius).to(x.dtype), w)
    y = torch.bmm(x.reshape(b * c, h, w), m)                        # along rows
    y = torch.bmm(m.transpose(1, 2), y)                             # along columns (square stamps)
    return y.view(b, c, h, w)


def add_noise(x: torch.Tensor, sigma: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Add Gaussian noise.

    Args:
        x: (B, C, H, W).
        sigma: (B, C) standard deviation per image and band, data units.
        gen: generator on ``x.device``.
    """
    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return x + noise * sigma.to(x.dtype)[:, :, None, None]


def scale_gain(x: torch.Tensor, gain: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
    """``sky + gain * (x - sky)`` per band: rescale the signal, keep the sky level.

    Args:
        x: (B, C, H, W); gain: (B, C); sky: (1, C, 1, 1) (the band medians).
    """
    return sky + gain.to(x.dtype)[:, :, None, None] * (x - sky)


def redden(x: torch.Tensor, ebv: torch.Tensor, extinction: torch.Tensor, sky: torch.Tensor) -> torch.Tensor:
    """Dim the signal of band b by ``10**(-0.4 * extinction[b] * ebv)`` (Galactic dust).

    Args:
        x: (B, C, H, W); ebv: (B,) E(B-V) in magnitudes; extinction: (C,) A_b / E(B-V);
        sky: (1, C, 1, 1) band medians (the sky level is kept).
    """
    transmission = torch.pow(10.0, -0.4 * ebv[:, None].to(torch.float32) * extinction[None].to(torch.float32))
    return scale_gain(x, transmission, sky)


class AstroAugment:
    """Random views of a batch of raw stamps, all on ``x.device``.

    Args:
        config: which augmentations and their ranges.
        image_size: side of the output crop, pixels.
        median, mad: (C,) band statistics of the training set (data units), see
            :class:`galexplorer.ssl.normalize.BandStats`.

    Call it as ``view = aug(x, gen)`` with x (B, C, S, S) float32 and a ``torch.Generator`` on
    x's device; the result is (B, C, image_size, image_size) float32 in data units (normalise
    it afterwards).
    """

    def __init__(self, config: AugmentConfig, image_size: int, median, mad):
        self.config = config
        self.image_size = int(image_size)
        self._median = torch.as_tensor(median, dtype=torch.float32).view(1, -1, 1, 1)
        self._mad = torch.as_tensor(mad, dtype=torch.float32).view(-1)
        self._ext = (torch.as_tensor(config.extinction, dtype=torch.float32)
                     if config.reddening_on else None)
        self._cache: dict[torch.device, tuple] = {}

    def _stats(self, device: torch.device):
        if device not in self._cache:
            self._cache[device] = (self._median.to(device), self._mad.to(device),
                                   None if self._ext is None else self._ext.to(device))
        return self._cache[device]

    def sample(self, b: int, c: int, gen: torch.Generator, device: torch.device) -> ViewParams:
        """Draw the parameters of one view for ``b`` stamps of ``c`` bands."""
        cfg = self.config
        zeros = torch.zeros(b, device=device)
        # draw every parameter whether or not it is used, so switching one augmentation off
        # does not change the random numbers of the others
        angle = _uniform(b, 0.0, 2 * math.pi, gen, device)
        flip = torch.rand(b, generator=gen, device=device) < 0.5
        scale = _uniform(b, *cfg.scale_range, gen, device)
        j = int(cfg.jitter_px)
        shift = torch.randint(-j, j + 1, (b, 2), generator=gen, device=device).to(torch.float32)
        ebv = _uniform(b, *cfg.ebv_range, gen, device)
        sig = _uniform((b, c) if cfg.blur_per_band else (b,), *cfg.blur_sigma, gen, device)
        gain = _uniform((b, c), *cfg.gain_range, gen, device)
        noise_k = _uniform(b, *cfg.noise_scale, gen, device)
        # drawn last and only when on, so runs without it keep the random numbers they had
        lo, hi = (math.log(v) for v in cfg.flux_range)
        flux = torch.exp(_uniform(b, lo, hi, gen, device)) if cfg.flux else None
        if flux is not None:
            gain = gain * flux[:, None]
        return ViewParams(
            angle=angle if cfg.rotate else zeros,
            flip=flip if cfg.flip else torch.zeros(b, dtype=torch.bool, device=device),
            scale=scale if cfg.scale else torch.ones(b, device=device),
            shift=shift if cfg.jitter else torch.zeros(b, 2, device=device),
            ebv=ebv if cfg.reddening_on else None,
            blur_sigma=(sig if sig.dim() == 2 else sig[:, None].expand(b, c)) if cfg.blur else None,
            gain=gain if cfg.gain else (flux[:, None].expand(b, c) if flux is not None else None),
            noise_k=noise_k if cfg.noise else None,
        )

    def apply(self, x: torch.Tensor, p: ViewParams, gen: torch.Generator | None,
              normalise: bool = False) -> torch.Tensor:
        """Apply the view ``p`` to ``x`` (B, C, S, S); ``gen`` draws the noise.

        With ``normalise`` the result is the network input ``asinh((y - median) / MAD)``
        computed in the same passes (see :func:`galexplorer.ssl.normalize.normalize`).

        Reddening and gain are per-band factors on the signal above the sky and the blur is
        linear with a unit-sum kernel, so they commute; they are applied together as one
        factor after the blur, which saves passes over the batch.
        """
        median, mad, ext = self._stats(x.device)
        b, c = x.shape[:2]
        y = resample(x, self.image_size, p.angle, p.flip, p.scale, p.shift)
        if p.blur_sigma is not None:
            # the PSF sigma is in output pixels; a radius from the configured maximum keeps the
            # kernel size fixed from step to step
            y = gaussian_blur(y, p.blur_sigma, int(math.ceil(3.0 * self.config.blur_sigma[1])))
        factor = None
        if p.ebv is not None and ext is not None:
            factor = torch.pow(10.0, -0.4 * p.ebv[:, None] * ext[None, :])
        if p.gain is not None:
            factor = p.gain if factor is None else factor * p.gain
        if normalise:
            scale = (factor if factor is not None else torch.ones(b, c, device=x.device)) / mad[None, :]
            scale = scale.to(y.dtype)[:, :, None, None]
            # (y - median) * scale in one pass
            y = torch.addcmul(-median.to(y.dtype) * scale, y, scale)
            if p.noise_k is not None:
                noise = torch.randn(y.shape, generator=gen, device=y.device, dtype=y.dtype)
                y.addcmul_(noise, p.noise_k.to(y.dtype)[:, None, None, None])   # sigma / MAD = k
            return asinh_(y)
        if factor is not None:
            y = scale_gain(y, factor, median)
        if p.noise_k is not None:
            y = add_noise(y, p.noise_k[:, None] * mad[None, :], gen)
        return y

    def __call__(self, x: torch.Tensor, gen: torch.Generator, normalise: bool = False) -> torch.Tensor:
        """A random view of ``x``: (B, C, S, S) -> (B, C, image_size, image_size).

        Returns data units, or the normalised network input when ``normalise``.
        """
        p = self.sample(x.shape[0], x.shape[1], gen, x.device)
        return self.apply(x, p, gen, normalise)
