"""``python -m galexplorer`` (also what ``torchrun -m galexplorer`` runs)."""

import sys

from .cli import main

sys.exit(main())
