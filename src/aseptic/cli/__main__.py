"""``python -m aseptic.cli``: the same as the ``aseptic`` console script."""

from aseptic.cli import main

main()
