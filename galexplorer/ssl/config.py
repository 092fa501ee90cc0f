"""Training configuration: :class:`TrainConfig` and :class:`AugmentConfig`, loaded from TOML/JSON.

Precedence, lowest first: the dataclass defaults, a shipped ``--preset NAME``
(:mod:`galexplorer.presets`), a ``--config FILE`` (TOML or JSON), then the command-line
options that were given. A file uses the option names (``batch_size`` or
``batch-size``) at the top level and an ``[augment]`` table for the augmentations::

    method = "simclr"
    epochs = 100
    batch-size = 256

    [augment]
    noise_scale = [1.0, 10.0]
    extinction = [3.303, 2.285, 1.698]   # A_band / E(B-V), one per band

The resolved configuration is written as ``RUN_DIR/config.json`` and inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..presets import load_preset, parse_toml

METHODS = ("byol", "nnclr", "simclr", "vicreg")
BACKBONES = ("resnet18", "resnet34", "resnet50")
STEMS = ("auto", "small", "medium", "standard")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")

# Projection / prediction MLP sizes of the original papers (BYOL: Grill et al. 2020; SimCLR:
# Chen et al. 2020). None in the config means "the method's default".
HEAD_DEFAULTS = {
    "byol": {"proj_hidden": 4096, "proj_dim": 256, "pred_hidden": 4096},
    "simclr": {"proj_hidden": 2048, "proj_dim": 128, "pred_hidden": 0},
    "nnclr": {"proj_hidden": 2048, "proj_dim": 256, "pred_hidden": 4096},      # Dwibedi et al. 2021
    "vicreg": {"proj_hidden": 2048, "proj_dim": 2048, "pred_hidden": 0},
}


@dataclass
class AugmentConfig:
    """Augmentations of astronomical stamps; each has an on/off switch and its parameters.

    All of them act on the raw pixel values (data units, before normalisation), in this order:
    one resampling for rotation + flip + scale + jitter-and-crop, reddening, PSF blur, gain,
    noise. Random values are drawn independently for each view of each image.

    Attributes:
        rotate: rotate by an angle drawn uniformly in [0, 360) degrees (galaxies have no
            preferred orientation on the sky).
        flip: mirror left-right with probability 0.5 (with ``rotate`` this covers every
            orientation and handedness).
        jitter: shift the crop centre by an integer number of pixels drawn uniformly in
            [-jitter_px, jitter_px] on each axis: detections are not perfectly centred. 3 px by
            default; Hayat et al. (2021) use 7 px, a fifth of a 32-px crop (see docs/training.md,
            "Augmentations").
        scale: magnify by a factor drawn uniformly in ``scale_range`` (apparent size varies with
            distance); 1 keeps the native pixel scale.
        blur: convolve each band with a Gaussian PSF whose sigma (pixels) is drawn uniformly in
            ``blur_sigma`` per view (and per band when ``blur_per_band``): seeing varies.
        noise: add Gaussian noise of sigma = k * MAD_band with k drawn uniformly in
            ``noise_scale`` per view; MAD_band is the band's median absolute deviation over
            the training set (Hayat et al. 2021): depth varies between fields. 0-5 MADs by
            default: Hayat et al.'s 1-25 drowns the faint light of tails, rings and arcs, and the
            network learns to ignore exactly what the rare classes are made of.
        gain: multiply each band's signal above the sky (x - median) by a factor drawn in
            ``gain_range``: calibration (zero-point) errors between bands.
        flux: multiply the signal above the sky (x - median) of all bands by one factor drawn
            log-uniformly in ``flux_range`` per view, before the asinh: the same galaxy nearer or
            farther, so the representation must not rest on brightness alone.
        reddening: dim band b by 10**(-0.4 * extinction[b] * E(B-V)), E(B-V) drawn uniformly in
            ``ebv_range``: Galactic dust in front of the field. Needs ``extinction`` (A_b/E(B-V),
            one per band, e.g. 3.303, 2.285, 1.698 for SDSS g, r, i); on when it is given.
    """

    rotate: bool = True
    flip: bool = True
    jitter: bool = True
    jitter_px: int = 3
    scale: bool = True
    scale_range: tuple[float, float] = (0.9, 1.1)
    blur: bool = True
    blur_sigma: tuple[float, float] = (0.0, 0.3)
    blur_per_band: bool = False
    noise: bool = True
    noise_scale: tuple[float, float] = (0.0, 5.0)
    gain: bool = True
    gain_range: tuple[float, float] = (0.8, 1.2)
    flux: bool = False
    flux_range: tuple[float, float] = (0.5, 2.0)
    reddening: bool | None = None
    extinction: list[float] | None = None
    ebv_range: tuple[float, float] = (0.0, 0.5)

    @property
    def reddening_on(self) -> bool:
        return bool(self.extinction) if self.reddening is None else bool(self.reddening)

    def validate(self, n_bands: int | None = None) -> None:
        """Raise :class:`ConfigError` for inconsistent values (``n_bands`` checks ``extinction``)."""
        for name, lo_min in (("scale_range", 1e-3), ("blur_sigma", 0.0), ("noise_scale", 0.0),
                             ("gain_range", 1e-3), ("ebv_range", 0.0), ("flux_range", 1e-3)):
            value = getattr(self, name)
            if len(value) != 2 or not all(math.isfinite(float(v)) for v in value):
                raise ConfigError(f"augment.{name} must be two numbers [low, high], got {value!r}")
            lo, hi = (float(v) for v in value)
            if lo > hi or lo < lo_min:
                raise ConfigError(f"augment.{name} = [{lo}, {hi}] is not a valid range "
                                  f"(need {lo_min} <= low <= high)")
        if self.blur_sigma[1] > 8:
            raise ConfigError(f"augment.blur_sigma up to {self.blur_sigma[1]} px is far larger than a PSF",
                              hint="use sigmas of a few pixels at most")
        if self.jitter_px < 0:
            raise ConfigError(f"augment.jitter_px must be >= 0, got {self.jitter_px}")
        if self.reddening and not self.extinction:
            raise ConfigError("augment.reddening needs augment.extinction (A_band / E(B-V), one per band)")
        if self.extinction is not None and n_bands is not None and len(self.extinction) != n_bands:
            raise ConfigError(f"augment.extinction has {len(self.extinction)} values for {n_bands} bands",
                              hint="give one coefficient per band, blue to red")


@dataclass
class TrainConfig:
    """Everything that defines a training run (the CLI options and the config-file keys).

    Attributes:
        method: 'simclr' (default), 'byol', 'nnclr' or 'vicreg'. SimCLR with the default augmentations is
            the recipe of benchmarks/bench_representation.py that beats raw-pixel PCA and the
            random network on the rare-class recall and the shape probes at 30 epochs, on real XDF
            pixels; BYOL loses recall after epoch 10 there (see docs/training.md, "Judging a run").
        backbone: 'resnet18', 'resnet34' or 'resnet50' (torchvision, random initialisation).
        stem: 'small' (3x3 stride-1 first convolution, no max-pool; keeps the detail of small
            stamps), 'medium' (7x7 stride 2, no max-pool; half the small stem's resolution at an
            eighth of its cost), 'standard' (7x7 stride 2 + max-pool; ~16x cheaper than small), or
            'auto': small when training on CUDA with crops <= 96 px, medium on CPU with crops
            <= 64 px, standard otherwise (on CPU the small stem at 64 px runs at ~3 images/s).
        epochs: passes over the data.
        batch_size: images per step per process (two views each).
        lr: peak learning rate of AdamW (after warm-up).
        weight_decay: AdamW weight decay (not applied to biases and normalisation weights).
        warmup_epochs: linear warm-up length; capped at a tenth of the run.
        image_size: side of the crop fed to the network, pixels; None = min(64, stamp side).
        device: 'auto' (CUDA when available), 'cpu' or 'cuda'.
        precision: 'auto' (bf16 autocast on CUDA, fp32 on CPU), 'fp32' or 'bf16'. Losses
            are always computed in float32.
        seed: seeds model initialisation, data order and augmentations.
        workers: data-loading worker processes (0 reads in the main process).
        temperature: NT-Xent temperature (SimCLR).
        tau_base: BYOL target EMA rate at the start; rises to 1 on a cosine schedule.
        queue_size: rows of NNCLR's support set (a FIFO queue of earlier projections).
        proj_hidden, proj_dim, pred_hidden: MLP head sizes; None = the method's default
            (BYOL 4096/256/4096, SimCLR 2048/128, VICReg 2048/2048).
        stats_objects: stamps sampled to measure each band's median and MAD.
        monitor_objects: stamps embedded after each epoch for the collapse monitor.
        eval_column: a label column of the cutouts file for kNN / linear-probe accuracy.
        eval_objects: most labelled objects used for that evaluation.
        augment: the augmentations (:class:`AugmentConfig`).
    """

    method: str = "simclr"
    backbone: str = "resnet18"
    stem: str = "auto"
    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 10.0
    image_size: int | None = None
    device: str = "auto"
    precision: str = "auto"
    seed: int = 0
    workers: int = 0
    temperature: float = 0.1
    tau_base: float = 0.99
    queue_size: int = 8192
    proj_hidden: int | None = None
    proj_dim: int | None = None
    pred_hidden: int | None = None
    stats_objects: int = 2000
    monitor_objects: int = 512
    eval_column: str | None = None
    eval_objects: int = 5000
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    # -- derived values ---------------------------------------------------------------------------
    def head_sizes(self) -> tuple[int, int, int]:
        """(proj_hidden, proj_dim, pred_hidden) with the method's defaults filled in."""
        d = HEAD_DEFAULTS[self.method]
        return (self.proj_hidden or d["proj_hidden"], self.proj_dim or d["proj_dim"],
                self.pred_hidden if self.pred_hidden is not None else d["pred_hidden"])

    def validate(self, n_bands: int | None = None) -> None:
        """Raise :class:`ConfigError` naming the first invalid option."""
        choices = {"method": METHODS, "backbone": BACKBONES, "stem": STEMS, "device": DEVICES,
                   "precision": PRECISIONS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"unknown {name} {getattr(self, name)!r}; choose one of {', '.join(allowed)}")
        for name in ("epochs", "batch_size", "stats_objects", "monitor_objects", "eval_objects"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be at least 2 (batch normalisation and contrastive "
                              "losses need more than one image per step)")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 10):
            raise ConfigError(f"lr must be a positive number below 10, got {self.lr!r}")
        if not (0 <= self.weight_decay < 1):
            raise ConfigError(f"weight_decay must be in [0, 1), got {self.weight_decay!r}")
        if not (0 <= self.warmup_epochs):
            raise ConfigError(f"warmup_epochs must be >= 0, got {self.warmup_epochs!r}")
        if self.image_size is not None and not (isinstance(self.image_size, int) and self.image_size >= 8):
            raise ConfigError(f"image_size must be an integer of at least 8 px, got {self.image_size!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers!r}")
        if not (isinstance(self.temperature, (int, float)) and self.temperature >= 1e-3):
            raise ConfigError(f"temperature must be >= 0.001, got {self.temperature!r}",
                              hint="the NT-Xent temperature is typically 0.05-0.5")
        if self.queue_size < 1:
            raise ConfigError(f"queue_size must be >= 1, got {self.queue_size!r}")
        if not (0 <= self.tau_base < 1):
            raise ConfigError(f"tau_base must be in [0, 1), got {self.tau_base!r}")
        for name in ("proj_hidden", "proj_dim"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if self.pred_hidden is not None and (not isinstance(self.pred_hidden, int) or self.pred_hidden < 0):
            raise ConfigError(f"pred_hidden must be a non-negative integer, got {self.pred_hidden!r}")
        if not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        self.augment.validate(n_bands)

    # -- (de)serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["augment"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["augment"].items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path | None = None) -> TrainConfig:
        """Build a config from a mapping of option names (dashes or underscores) to values.

        Raises:
            ConfigError: an unknown key or a value of the wrong type.
        """
        return _merge(cls(), data, source)


def _norm_key(key: str) -> str:
    return key.strip().replace("-", "_")


def _coerce(name: str, value: Any, default: Any, source) -> Any:
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list [low, high], got {value!r}", source)
        return tuple(float(v) for v in value)
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}", source)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _merge(cfg: TrainConfig, data: dict[str, Any], source=None) -> TrainConfig:
    """A copy of ``cfg`` with the values in ``data`` applied (``data['augment']`` merges too)."""
    if not isinstance(data, dict):
        raise ConfigError("a config must be a table of options", source)
    known = {f.name: f for f in fields(TrainConfig)}
    updates: dict[str, Any] = {}
    aug_updates: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = _norm_key(raw_key)
        if key == "augment":
            if not isinstance(value, dict):
                raise ConfigError("augment must be a table of augmentation options", source)
            aug_known = {f.name for f in fields(AugmentConfig)}
            for ak, av in value.items():
                ak = _norm_key(ak)
                if ak not in aug_known:
                    raise ConfigError(f"unknown augmentation option {ak!r}", source,
                                      f"valid: {', '.join(sorted(aug_known))}")
                aug_updates[ak] = _coerce(f"augment.{ak}", av, getattr(cfg.augment, ak), source)
            continue
        if key not in known:
            raise ConfigError(f"unknown option {raw_key!r}", source,
                              f"valid: {', '.join(sorted(known))}")
        updates[key] = _coerce(key, value, getattr(cfg, key), source)
    aug = dataclasses.replace(cfg.augment, **aug_updates)
    if isinstance(aug.extinction, (list, tuple)):
        aug.extinction = [float(v) for v in aug.extinction]
    return dataclasses.replace(cfg, **updates, augment=aug)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or JSON file of options.

    Raises:
        ConfigError: missing file, unknown extension or a syntax error (with its line).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("no such config file", path, "give a .toml or .json file")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"invalid JSON at line {exc.lineno}: {exc.msg}", path) from None
    if suffix == ".toml":
        return parse_toml(text, path)
    raise ConfigError(f"unknown config file type {suffix!r}", path, "use .toml or .json")


def _given(options: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (options or {}).items() if v is not None}


def config_from_options(options: dict[str, Any] | None = None, config_file: str | Path | None = None,
                        preset: str | None = None) -> TrainConfig:
    """The config from defaults < ``preset`` < ``config_file`` (TOML/JSON) < ``options``.

    Args:
        options: :class:`TrainConfig` field names to values, None meaning "not given" (the
            command line's options).
        config_file: a file with the same options, or None.
        preset: the name of a shipped training preset (:mod:`galexplorer.presets`), or None.

    Raises:
        ConfigError: an unknown preset, an unreadable file, an unknown option, a value of the
            wrong type.
    """
    cfg = TrainConfig()
    if preset:
        cfg = _merge(cfg, load_preset(preset, "train"), f"preset {preset}")
    if config_file:
        cfg = _merge(cfg, load_config_file(config_file), config_file)
    return _merge(cfg, _given(options))


def resume_overrides(options: dict[str, Any] | None = None, config_file: str | Path | None = None,
                     preset: str | None = None) -> dict[str, Any]:
    """What a resumed run changes of its checkpoint's config: the preset's options, the file's,
    then the ``options`` given (None = not given); see :func:`galexplorer.ssl.trainer.train`."""
    out: dict[str, Any] = {}
    if preset:
        out.update({_norm_key(k): v for k, v in load_preset(preset, "train").items()})
    if config_file:
        out.update({_norm_key(k): v for k, v in load_config_file(config_file).items()})
    out.update(_given(options))
    return out
