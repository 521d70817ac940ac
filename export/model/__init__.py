"""The input side of the export: a diffusers model folder inspected (no torch), its modules loaded, hashes."""
