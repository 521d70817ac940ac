"""The variance-exploding family: score SDE VE, Karras et al.'s VE sampler and consistency models noise a clean
sample as x_0 + sigma eps with a sigma schedule of their own (geometric, or EDM's rho schedule), from sigma_min to
sigma_max, with no betas or alpha-bar behind it.

Why a family of its own: the sigma/ family derives its sigmas from a variance-preserving training schedule
(alpha-bar) and places integer training timesteps on them; these schedulers have neither.
"""
