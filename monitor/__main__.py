"""``python -m monitor`` runs the ``bearwatch`` command."""

import sys

from monitor.cli.main import main

sys.exit(main())
