"""``python -m citywok.cli``: the same as the ``citywok`` command."""

from citywok.cli.main import main

main()
