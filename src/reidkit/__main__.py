"""``python -m reidkit`` (what ``torchrun -m reidkit train ...`` runs on each process)."""

import sys

from reidkit.cli import main

sys.exit(main())
