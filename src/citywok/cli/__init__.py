"""``citywok``: the command-line shell (``main``), one module per group of commands."""
