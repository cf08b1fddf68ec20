"""The web service: a thin HTTP shell over the engine (``citywok serve``).

Importing this package imports nothing heavy; :mod:`citywok.web.app` builds the app.
"""
