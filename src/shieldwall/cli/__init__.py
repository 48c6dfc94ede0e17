"""The ``shieldwall`` command."""
