"""The alpha-bar family: DDPM, DDIM, PNDM and LCM step at integer training timesteps on alpha-bar (the
cumulative product of 1 - beta) directly, with an unscaled model input and unit-variance starting noise."""
