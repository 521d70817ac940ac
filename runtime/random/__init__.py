"""Random numbers: torch's CPU generator re-made in NumPy (same seeds, same latents), and the
``generator=`` argument of the pipelines."""
