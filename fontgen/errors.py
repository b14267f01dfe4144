class FontgenError(Exception):
    """A failure the user can act on: printed as one line, exit status 1, no traceback."""
