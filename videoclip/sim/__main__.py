"""``python -m videoclip.sim simulate …``: see :mod:`videoclip.sim.cli`."""

import sys

from videoclip.sim.cli import main

sys.exit(main())
