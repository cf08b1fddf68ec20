"""One module per area of the API; each route parses, calls the engine once, formats."""
