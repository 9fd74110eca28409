"""BigGAN (Brock, Donahue & Simonyan 2019, "Large Scale GAN Training for High Fidelity Natural Image
Synthesis"): a class-conditional GAN with the nets of gen_runner/nets/biggan.py (shared class
embedding, hierarchical z, conditional BatchNorm, ResNet blocks, SAGAN self-attention,
projection discriminator; spectral norm in both nets) and the training of the paper's 128x128
ImageNet appendix, set in configs/model/biggan.yaml: the hinge loss (model/objective=hinge),
orthogonal regularization of G at beta 1e-4 (gans/regularizers.py, on the stored weights of the
spectral-normed layers, as the authors' code), 2 D steps per G step, Adam betas (0, 0.999) with
G 5e-5 and D 2e-4. `truncation=t` samples z from N(0, 1) truncated to [-t, t] (gen_runner/base.py).

The loop is the conditional GAN's (gans/conditional.py): the fakes of a step are made for the
real batch's labels; each D step takes a fresh batch (so max_steps counts D steps), and G steps
on the last D step's fakes. Deviation: the authors' code draws fresh z and labels for G's step.
BatchNorm in G uses batch statistics in training and the running ones (momentum 0.1) in eval-mode
sampling; the paper's "standing statistics" are not computed.
"""
from __future__ import annotations

from gen_runner.errors import UserError
from gen_runner.gans.conditional import ConditionalGANModule

__all__ = ["BigGANModule"]


class BigGANModule(ConditionalGANModule):
    def __init__(self, *args, spectral_norm: bool = False, **kwargs):
        if spectral_norm:
            raise UserError("model.spectral_norm=true: BigGAN's nets apply spectral norm themselves "
                            "(model.generator.spectral_norm, model.discriminator.spectral_norm); drop it")
        super().__init__(*args, **kwargs)
