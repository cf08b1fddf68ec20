"""``python -m citywok``: the same as the ``citywok`` command."""

from citywok.cli.main import main

main()
