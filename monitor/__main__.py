"""``python -m monitor`` runs the ``bearwatch`` command."""

import sys

from monitor.cli import main

sys.exit(main())
