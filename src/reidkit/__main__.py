"""``python -m reidkit`` (what ``torchrun -m reidkit train ...`` runs on each process)."""

import sys

from reidkit.app.cli import main

sys.exit(main())
