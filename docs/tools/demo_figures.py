"""Galleries of the demo's natural "interesting" objects for docs/getting-started.md.

    python docs/tools/demo_figures.py                      # builds or reuses the demo, writes docs/images/demo-*.png
    python docs/tools/demo_figures.py --out DEMO_DIR       # the demo in another folder (as `galexplorer demo --out`)
    python docs/tools/demo_figures.py --contact-sheets DIR # every object, 50 per sheet, to choose examples by eye

The demo (``galexplorer.demo.build_demo``: cutouts, a BYOL encoder, the store) takes about ten
minutes on 2 cores the first time and is reused afterwards. The galleries show the cutouts
themselves (the XDF image's own colours, red = the reddest band), not the explorer's
asinh-stretched thumbnails, at 3x.

The ids below were chosen by looking at every stamp of the demo (the contact sheets) and are
stable: the demo numbers its sources by decreasing flux, and the detection is deterministic.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

#: name -> (title, ids). Chosen by eye from the contact sheets; see the module docstring.
GALLERIES: dict[str, tuple[str, list[str]]] = {
    "stars": ("Stars: diffraction spikes, saturated cores (and a star beside a faint detection)",
              ["XDF0010", "XDF0021", "XDF0019", "XDF0110", "XDF0335"]),
    "interacting": ("Interacting systems and close pairs: tidal tails, bridges, double nuclei",
                    ["XDF0002", "XDF0005", "XDF0003", "XDF0056", "XDF0034"]),
    "clumpy": ("Clumpy and irregular galaxies: star-forming knots, a chain galaxy",
               ["XDF0030", "XDF0038", "XDF0040", "XDF0048", "XDF0055"]),
    "blends": ("Blends: several sources in one stamp, a bright neighbour at the edge",
               ["XDF0013", "XDF0007", "XDF0122", "XDF0050", "XDF0065"]),
    "artefacts": ("Artefacts: the edge of the XDF mosaic; one clumpy system split into three detections",
                  ["XDF0025", "XDF0127", "XDF0032", "XDF0131", "XDF0354"]),
}
SCALE = 3


def stamps_rgb(cutouts: Path, ids: list[str]) -> np.ndarray:
    """(K, H, W, 3) float in [0, 1]: the stamps of ``ids`` as RGB (reddest band as red)."""
    from galexplorer.store import CutoutStore

    with CutoutStore(cutouts) as cut:
        all_ids = list(cut.ids)
        missing = [i for i in ids if i not in all_ids]
        if missing:
            raise SystemExit(f"{cutouts}: no object {', '.join(missing)}: has the demo's detection changed? "
                             "Choose new examples with --contact-sheets")
        rows = [all_ids.index(i) for i in ids]
        images = np.stack([cut.read(slice(r, r + 1))[0] for r in rows])        # (K, C, H, W)
    c = images.shape[1]
    rgb = images[:, [c - 1, c // 2, 0]] if c >= 3 else np.repeat(images[:, :1], 3, axis=1)
    return np.clip(np.moveaxis(rgb, 1, -1), 0.0, 1.0)


def gallery(cutouts: Path, title: str, ids: list[str], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rgb = stamps_rgb(cutouts, ids)
    k, size = len(ids), rgb.shape[1]
    inch = size * SCALE / 100
    fig, axes = plt.subplots(1, k, figsize=(k * inch + 0.1 * (k + 1), inch + 0.55), dpi=100)
    for ax, img, oid in zip(np.atleast_1d(axes), rgb, ids):
        ax.imshow(img, interpolation="lanczos")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(oid, fontsize=11, labelpad=3)
    fig.suptitle(title, fontsize=11, y=0.985)
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.1, top=0.88, wspace=0.03)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, pil_kwargs={"optimize": True})
    plt.close(fig)
    return out


def contact_sheets(cutouts: Path, folder: Path, per_sheet: int = 50, columns: int = 10) -> list[Path]:
    """Every stamp at 2x with its id, ``per_sheet`` to a PNG, to choose examples by eye."""
    from PIL import Image, ImageDraw

    from galexplorer.store import CutoutStore

    with CutoutStore(cutouts) as cut:
        ids = list(cut.ids)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for start in range(0, len(ids), per_sheet):
        chunk = ids[start:start + per_sheet]
        rgb = (stamps_rgb(cutouts, chunk) * 255).astype(np.uint8)
        s = rgb.shape[1] * 2
        rows = (len(chunk) + columns - 1) // columns
        sheet = Image.new("RGB", (columns * (s + 6), rows * (s + 20)), "white")
        draw = ImageDraw.Draw(sheet)
        for k, (img, oid) in enumerate(zip(rgb, chunk)):
            r, c = divmod(k, columns)
            x, y = c * (s + 6), r * (s + 20)
            sheet.paste(Image.fromarray(img).resize((s, s), Image.NEAREST), (x, y))
            draw.text((x + 2, y + s + 3), oid, fill="black")
        path = folder / f"sheet-{start // per_sheet:02d}.png"
        sheet.save(path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="the demo's folder (default: as `galexplorer demo`)")
    p.add_argument("--images", type=Path, default=ROOT / "docs" / "images", help="where to write the PNGs")
    p.add_argument("--contact-sheets", type=Path, metavar="DIR", help="also write every stamp to DIR")
    args = p.parse_args(argv)

    import logging

    from galexplorer.demo import build_demo

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    res = build_demo(args.out)
    print(res.summary())
    for name, (title, ids) in GALLERIES.items():
        print("wrote", gallery(res.cutouts, title, ids, args.images / f"demo-{name}.png"))
    if args.contact_sheets:
        for path in contact_sheets(res.cutouts, args.contact_sheets):
            print("wrote", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
