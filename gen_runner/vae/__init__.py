"""Variational autoencoders (gen_runner/vae/module.py) and their flow posteriors (posteriors.py)."""
