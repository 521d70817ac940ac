"""Training of sdrt's small default model (not part of the installed package)."""
