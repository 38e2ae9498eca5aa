"""``python -m videoclip`` → :func:`videoclip.cli.main`."""

import sys

from videoclip.cli import main

if __name__ == "__main__":
    sys.exit(main())
