"""``python -m training.synthetic``: write a seeded synthetic dataset."""

import sys

from training.synthetic.scenes import main

sys.exit(main())
