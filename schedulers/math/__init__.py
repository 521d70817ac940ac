"""Schedule math every family shares: array modules (NumPy/CuPy), beta schedules and alpha-bar, noise
levels sigma and their spacings, dynamic thresholding. (Named like the stdlib ``math``: modules here use
absolute imports, so ``import math`` still gives the stdlib.)"""
