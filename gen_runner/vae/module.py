"""The variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes") for binary
images, with a flow posterior of choice (gen_runner/vae/posteriors.py).

A standard normal prior p(z) on `latent_dim` dimensions, a Bernoulli decoder p(x | z) with logits
decoder(z) (every pixel independent), and q(z | x) from the encoder. Training maximises the
evidence lower bound, estimated with one posterior sample per example,

    ELBO(x) = E_q[log p(x | z_K) + log p(z_K) - log q_K(z_K | x)] <= log p(x),

with the KL part weighted by beta_t = min(1, t / warmup_steps) (t the step; 0 steps: beta = 1),
the warm-up of the flow papers (Rezende & Mohamed 2015 anneal beta from 0.01 over 10,000 steps,
van den Berg et al. 2018 from 0 over 100 epochs). All in nats per example. Logged: `train/loss`
(the beta-weighted objective), `train/neg_elbo`, `train/kl` (log q - log p(z), one sample),
`train/beta` and `val/neg_elbo` (the same bound, from fixed noise at every validation).

`gen-runner eval` reports `neg_elbo`, the -ELBO averaged over S = `eval.iw_samples` posterior
samples per example, and `nll_iw`, the importance-weighted bound of the same samples (Burda,
Grosse & Salakhutdinov 2016, "Importance Weighted Autoencoders")

    -log p(x) <= nll_iw = -log (1/S) sum_s p(x, z_s) / q(z_s | x),   z_s ~ q(z | x),

which the papers report as the test NLL with S = 5000: nll_iw <= neg_elbo for every draw (Jensen),
equal at S = 1, and its expectation decreases with S toward -log p(x) (Burda et al., theorem 1).

Deviation: the KL term is the Monte-Carlo estimate for every posterior, the diagonal one included
(as van den Berg et al.'s code; Kingma & Welling's estimator B integrates it analytically for the
diagonal Gaussian), so the posteriors differ only in q.

Samples: `decode` returns the decoder's Bernoulli means, sigmoid(logits), as images in [0, 1]; the
walks (interpolate, arithmetic) run in z under the N(0, I) prior; `temperature` T scales the
prior's standard deviation (z = T eps), as for flows: a smaller T draws from the prior's core,
where decoded digits are cleaner and less varied (NVAE samples at T = 0.6-0.9; Vahdat & Kautz
2020). `sample mode=reconstruct` decodes z from eps = 0 pushed through the posterior's flow.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from gen_runner.base import Autoencoding
from gen_runner.capabilities import eval_metric
from gen_runner.errors import UserError
from gen_runner.metrics.context import pooled
from gen_runner.vae.posteriors import HALF_LOG_2PI, Posterior, make_flow

__all__ = ["VAEModule"]

IW_CHUNK = 10_000  # decoded (sample, example) pairs per pass of the importance-weighted bound


class VAEModule(Autoencoding):
    family = "vae"
    temperature_means = "scales the prior's standard deviation, z = T eps (NVAE's reduced temperature)"

    def __init__(self, encoder: Callable[..., nn.Module], decoder: Callable[..., nn.Module], data: dict,
                 optimizer: Callable[..., torch.optim.Optimizer] | None = None, latent_dim: int = 32,
                 posterior: str = "diagonal", flow_length: int = 4, num_ortho_vecs: int = 8,
                 num_householder: int = 8, iaf_hidden: Sequence[int] = (128, 128), warmup_steps: int = 0):
        """`posterior`: one of gen_runner.vae.posteriors.POSTERIORS, `flow_length` steps (K);
        `num_ortho_vecs`: O-SNF's M; `num_householder`: H-SNF's reflections; `iaf_hidden`: IAF's
        MADE widths; `warmup_steps`: the KL weight rises linearly from 0 to 1 over that many steps."""
        super().__init__(data, optimizer)
        if not self.is_image or self.num_levels != 2:
            raise UserError(f"model=vae has a Bernoulli decoder: train it on binary images (data=binarized_digits or "
                            f"data=binarized_mnist), not data of shape {self.data_shape} with "
                            f"{self.num_levels or 'continuous'} levels")
        if latent_dim < 1 or warmup_steps < 0:
            raise ValueError(f"model.latent_dim={latent_dim}, model.warmup_steps={warmup_steps}: pass a latent_dim "
                             ">= 1 and warmup_steps >= 0")
        self.latent_dim, self.warmup_steps, self.posterior_kind = latent_dim, warmup_steps, posterior
        self.flow_length = None if posterior == "diagonal" else flow_length
        self.encoder = encoder(data_shape=self.data_shape)
        features = self.encoder.out_features
        self.posterior = Posterior(features, latent_dim, make_flow(posterior, features, latent_dim, flow_length,
                                                                   num_ortho_vecs, num_householder, iaf_hidden))
        self.decoder = decoder(data_shape=self.data_shape, latent_dim=latent_dim)
        self._val_generator: torch.Generator | None = None

    # -- the bound ----------------------------------------------------------------------------------
    def draw_eps(self, num_samples: int, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Standard normal noise [S, n, latent_dim] for S posterior samples of n examples."""
        shape = (num_samples, n, self.latent_dim)
        if generator is None:
            return torch.randn(shape, device=self.device)
        return torch.randn(shape, generator=generator, device=generator.device).to(self.device)

    def log_weights(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x | z_s), log p(z_s) - log q(z_s | x)), each [S, B], for the posterior samples z_s
        of each binary example of x [B, C, H, W] that the noise eps [S, B, latent_dim] gives."""
        x = x.float()
        z, log_q = self.posterior(self.encoder(x), eps)
        logits = self.decoder(z.flatten(0, 1)).view(len(eps), len(x), -1)
        targets = x.flatten(1).expand(len(eps), -1, -1)
        log_px = -F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(-1)
        log_pz = -(0.5 * z ** 2 + HALF_LOG_2PI).sum(-1)
        return log_px, log_pz - log_q

    @torch.no_grad()
    def bounds(self, x: torch.Tensor, num_samples: int, generator: torch.Generator | None = None):
        """(ELBO, importance-weighted bound) per example [B], both from the same S = `num_samples`
        posterior samples (the ELBO averaged over them), all drawn first, decoded in chunks of at
        most IW_CHUNK (sample, example) pairs."""
        eps, chunk = self.draw_eps(num_samples, len(x), generator), max(1, IW_CHUNK // len(x))
        log_w = torch.cat([sum(self.log_weights(x, eps[s : s + chunk])) for s in range(0, num_samples, chunk)])
        return log_w.mean(0), torch.logsumexp(log_w, 0) - math.log(num_samples)

    def beta(self, step: int) -> float:
        return 1.0 if not self.warmup_steps else min(1.0, step / self.warmup_steps)

    def training_step(self, batch, batch_idx: int):
        log_px, neg_kl = self.log_weights(batch[0], self.draw_eps(1, len(batch[0])))
        beta = self.beta(self.global_step)
        metrics = {"train/loss": -(log_px + beta * neg_kl).mean(), "train/neg_elbo": -(log_px + neg_kl).mean(),
                   "train/kl": -neg_kl.mean(), "train/beta": torch.tensor(beta)}
        self.log_dict(metrics, prog_bar=True)
        return {**metrics, "loss": metrics["train/loss"]}

    def on_validation_epoch_start(self) -> None:
        # The same posterior noise at every validation, from its own generator (exact resume).
        self._val_generator = torch.Generator(self.device).manual_seed(0)

    def validation_step(self, batch, batch_idx: int) -> None:
        log_px, neg_kl = self.log_weights(batch[0], self.draw_eps(1, len(batch[0]), self._val_generator))
        self.log("val/neg_elbo", -(log_px + neg_kl).mean(), prog_bar=True, batch_size=len(batch[0]))

    def configure_optimizers(self):
        return self.optimizer_factory(self.parameters())

    # -- sampling --------------------------------------------------------------------------------------
    def draw_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.noise(n, self.latent_dim, generator=generator)

    @property
    def gaussian_noise(self) -> bool:
        return True

    @torch.no_grad()
    def decode(self, noise: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """The Bernoulli means sigmoid(decoder(T z)), images in [0, 1]."""
        return torch.sigmoid(self.decoder(noise.to(self.device) * temperature))

    @torch.no_grad()
    def reconstruction(self, x: torch.Tensor) -> torch.Tensor:
        """The Bernoulli means decoded from z = the flow applied to the posterior mean (eps = 0)."""
        x = x.to(self.device).float()
        h = self.encoder(x)
        z, _ = self.posterior(h, torch.zeros(len(x), self.latent_dim, device=self.device))
        return torch.sigmoid(self.decoder(z))

    @eval_metric("neg_elbo, nll_iw (nats per example; eval.iw_samples posterior samples, the papers use 5000)")
    def likelihood_bounds(self, ctx):
        if tuple(ctx.datamodule.shape) != self.data_shape or ctx.datamodule.num_levels != 2:
            raise UserError(f"this VAE was trained on binary images of shape {self.data_shape}; evaluate it on "
                            "binary data of that shape (data=binarized_digits or binarized_mnist)")
        samples = ctx.options.iw_samples
        generator = torch.Generator(ctx.device).manual_seed(ctx.seed)
        found = []
        for loader in ctx.loaders():
            elbo, iw = zip(*(self.bounds(batch[0].to(ctx.device), samples, generator) for batch in loader))
            elbo, iw = torch.cat(elbo).double(), torch.cat(iw).double()
            found.append({"neg_elbo": -elbo.mean().item(), "nll_iw": -iw.mean().item(), "num_examples": len(iw)})
        metrics, n = pooled(found)
        return metrics, {"split": ctx.options.split, "num_examples": n, "iw_samples": samples,
                         "posterior": self.posterior_kind, "flow_length": self.flow_length, "unit": "nats per example",
                         "bound": "nll_iw = -log mean_s p(x, z_s) / q(z_s|x), neg_elbo = -mean_s log p(x, z_s) / "
                                  "q(z_s|x), the same iw_samples draws z_s ~ q(z|x) per example"}
