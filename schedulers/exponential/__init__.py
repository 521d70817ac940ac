"""The exponential-integrator family: DPM-Solver (multistep and singlestep), DEIS and UniPC solve the
diffusion ODE exactly in its linear part and expand the model output in lambda = log(alpha_t / sigma_t)."""
