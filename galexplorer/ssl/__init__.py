"""Self-supervised learning (the only package that imports torch): backbones, augmentations, losses, BYOL, SimCLR, trainer, embedding, distributed helpers."""
