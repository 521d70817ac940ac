"""The engine bundle: its schema (``manifest``, ``records``: the only code that reads and writes
``manifest.json``) and an opened bundle folder (``bundle``)."""
