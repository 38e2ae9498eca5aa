"""``python -m videoclip.book run | all | sync`` → :func:`videoclip.book.runner.main`."""

import sys

from videoclip.book.runner import main

if __name__ == "__main__":
    sys.exit(main())
