"""``python -m edgesep``: the command line, as torchrun starts it (``torchrun -m edgesep ...``)."""

from edgesep.cli.main import main

main()
