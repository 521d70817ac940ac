"""The sigma (k-diffusion) family: Euler, Euler ancestral, Heun, LMS, KDPM2 and KDPM2 ancestral integrate
dx/dsigma in the noise level sigma = sqrt((1 - alpha-bar) / alpha-bar); the model sees x / sqrt(sigma^2 + 1)."""
