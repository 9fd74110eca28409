"""SRGAN and SRResNet (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network").

G is SRResNet (16 residual blocks, sub-pixel upsampling; gen_runner/nets/srresnet.py), D SRGAN's
8-conv discriminator. G minimises the perceptual loss (eq. 3)

    l_SR = l_content + adversarial_weight * l_Gen,   l_Gen = -log D(G(x))   (eq. 6, non-saturating)

- `content=mse`: l_MSE, the pixel-wise mean squared error on images in [-1, 1] (eq. 4), and by
  default no adversarial term: SRResNet, the MSE baseline (`adversarial_weight=1e-3` with it is the
  paper's SRGAN-MSE).
- `content=features`: l_VGG/i.j, the mean squared error between feature maps of the output and the
  target (eq. 5), with the adversarial weight 1e-3 by default: SRGAN. The feature network is
  VGG19's phi_5,4 (the paper's VGG54, features rescaled by 1/12.75) when `vgg19_weights=` names a
  torchvision VGG19 weights file (gen_runner/nets/vgg.py, read with weights_only=True, offline),
  or a gen-runner classifier checkpoint's (`content_features_ckpt=`, read by the trusted loader of
  gen_runner/checkpoints.py): its last conv activation before its last max-pooling, VGG54's
  analogue. The feature network is loaded when training starts and is not part of the checkpoint.
- Data: paired super-resolution data (sr4, whose inputs are made by the data), or plain HR images
  (image_folder, ...): the inputs are then their `factor`x antialiased bicubic downsampling, as the
  paper makes its LR images ("downsampling the HR images using bicubic kernel", sec. 3.1).
- `init_ckpt=<a content=mse run>/checkpoints/last.ckpt`: G starts from that SRResNet, as the paper
  initialises SRGAN (sec. 3.2); loaded when training starts (a resumed run keeps its own weights).

D minimises the standard GAN loss (model.objective). Adam with lr 1e-4 and beta1 0.9 (sec. 3.2);
the paper's 10^5 steps at 1e-4 then 10^5 at 1e-5 are `trainer.max_steps` and a second run from
the first's checkpoint with optimizer.lr=1e-5. Eval adds the bicubic baseline (`bicubic_*`: the
input upsampled with bicubic interpolation, scored as the outputs are).

Deviations: PSNR and SSIM are computed on all channels in [0, 1] without the paper's 4-pixel border
crop or its Y channel; the LR input is in [-1, 1] as the HR images (the paper: [0, 1]).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gen_runner.capabilities import eval_metric
from gen_runner.checkpoints import load_checkpoint, model_from_checkpoint
from gen_runner.data.translation import downsample
from gen_runner.errors import UserError
from gen_runner.gans.module import Losses
from gen_runner.gans.objectives import Objective
from gen_runner.gans.translation import TranslationBatch, TranslationModule
from gen_runner.nets.vgg import VGG19Features

__all__ = ["SRGANModule", "FeatureContent", "classifier_feature_map", "bicubic"]

VGG_RESCALE = 12.75  # the paper's factor: VGG54 features / 12.75, "comparable to the MSE loss"


def classifier_feature_map(classifier: nn.Module) -> nn.Module:
    """A gen-runner image classifier's (gen_runner/nets/classifier.py) conv layers up to its last
    max-pooling (exclusive): images in [-1, 1] -> its last conv activation map."""
    body = getattr(classifier.net, "body", None)
    pools = [i for i, m in enumerate(body or []) if isinstance(m, nn.MaxPool2d)]
    if not pools:
        raise UserError("model.content_features_ckpt: this classifier has no conv layers to take features from; "
                        "pass an image classifier (experiment=classifier_digits)")
    return body[: pools[-1]]


class FeatureContent:
    """l_VGG: mean squared difference of `net`'s features of two image batches in [-1, 1], after
    `to_input` (what the net expects) and divided by `rescale`. The net is frozen, in eval mode, kept
    apart from the module's parameters (not trained, not saved), and follows the images' device."""

    def __init__(self, net: nn.Module, to_input: Callable[[torch.Tensor], torch.Tensor], rescale: float = 1.0):
        self.net, self.to_input, self.rescale = net.eval().requires_grad_(False), to_input, rescale

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        net = self.net.to(output.device)
        with torch.no_grad():
            target_features = net(self.to_input(target)) / self.rescale
        return F.mse_loss(net(self.to_input(output)) / self.rescale, target_features)

    @classmethod
    def vgg54(cls, weights: str) -> "FeatureContent":
        """The paper's VGG54: phi_5,4 of VGG19 on images in [0, 1], features / 12.75."""
        return cls(VGG19Features.from_file(weights), lambda x: (x + 1) / 2, VGG_RESCALE)

    @classmethod
    def classifier(cls, ckpt_path: str, channels: int) -> "FeatureContent":
        """A gen-runner classifier checkpoint's last conv activation map (its conv layers see [-1, 1])."""
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["gen_runner"]["family"] != "classifier":
            raise UserError(f"model.content_features_ckpt={ckpt_path} holds a {ckpt['gen_runner']['family']}; pass a "
                            "model=classifier checkpoint of the target images (experiment=classifier_digits)")
        classifier = model_from_checkpoint(ckpt)
        if classifier.data_shape[0] != channels:
            raise UserError(f"model.content_features_ckpt={ckpt_path} takes {classifier.data_shape[0]}-channel images, "
                            f"the targets have {channels}: train the classifier on the target images")
        return cls(classifier_feature_map(classifier), lambda x: x)


def bicubic(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The baseline: images in [0, 1] upsampled to `size` with bicubic interpolation, clamped to [0, 1]."""
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False).clamp(0, 1)


class SRGANModule(TranslationModule):
    """SRResNet (content=mse) and SRGAN (content=features): see the module docstring."""

    data_kinds = ("paired", "images")

    def __init__(self, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 objective: Objective, data: dict, optimizer: Callable[..., torch.optim.Optimizer] | None = None,
                 content: str = "mse", adversarial_weight: float | None = None,
                 content_features_ckpt: str | None = None,
                 vgg19_weights: str | None = None, init_ckpt: str | None = None, factor: int = 4, **kwargs):
        if content not in ("mse", "features"):
            raise UserError(f"model.content={content!r}: choose mse (SRResNet) or features (SRGAN)")
        if content == "features" and bool(content_features_ckpt) == bool(vgg19_weights):
            raise UserError("model.content=features needs one feature network: model.content_features_ckpt=<a "
                            "classifier checkpoint> or model.vgg19_weights=<torchvision's vgg19-dcbb9e9d.pth>")
        if adversarial_weight is None:
            adversarial_weight = 0.0 if content == "mse" else 1e-3
        if adversarial_weight < 0:
            raise UserError(f"model.adversarial_weight={adversarial_weight}: pass a weight >= 0 (the paper: 1e-3)")
        if data.get("kind") == "images":  # plain HR images: the inputs are made from them
            c, h, w = data["shape"]
            if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2 or h % factor or w % factor:
                raise UserError(f"model.factor={factor!r}: pass a downsampling factor >= 2 that divides the image "
                                f"size {h}x{w}")
            data = {**data, "input_shape": [c, h // factor, w // factor]}
        super().__init__(generator, discriminator, objective, data, optimizer, **kwargs)
        self.content, self.adversarial_weight, self.factor = content, adversarial_weight, factor
        self.content_features_ckpt, self.vgg19_weights, self.init_ckpt = content_features_ckpt, vgg19_weights, init_ckpt
        self.content_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.mse_loss

    def batch_parts(self, batch, domain: str = "A") -> tuple:
        """Paired batches as the base; plain images (x[, labels]) are the targets of their own
        `factor`x downsampling (antialiased bicubic, rounded to the data's levels, as data=sr4)."""
        if self.data_info["kind"] != "images":
            return super().batch_parts(batch, domain)
        x = batch[0]
        return downsample(x, self.factor, self.num_levels), x, batch[1] if len(batch) > 1 else None, None

    def setup(self, stage: str) -> None:
        """Training starts: the content network and G's initial weights are read (before a resumed
        run's own weights are restored over them)."""
        if stage != "fit":
            return
        if self.content == "features":
            self.content_loss = (FeatureContent.vgg54(self.vgg19_weights) if self.vgg19_weights else
                                 FeatureContent.classifier(self.content_features_ckpt, self.data_shape[0]))
        if self.init_ckpt:
            self.load_generator(self.init_ckpt)

    def load_generator(self, path: str) -> None:
        """G's weights from another SRGAN/SRResNet checkpoint of the same architecture."""
        state = {k.removeprefix("generator."): v for k, v in load_checkpoint(path)["state_dict"].items()
                 if k.startswith("generator.")}
        try:
            self.generator.load_state_dict(state)
        except RuntimeError as e:
            raise UserError(f"model.init_ckpt={path}: its generator does not fit this one ({str(e).splitlines()[0]}); "
                            "pass a model=srgan model.content=mse run with the same model.generator and data") from None

    def discriminator_loss(self, batch: TranslationBatch) -> Losses:
        real, fake = self.critic(batch.real), self.critic(batch.fake.detach())
        return Losses({"train/d_loss": self.objective.d_loss(real, fake)})

    def generator_loss(self, batch: TranslationBatch) -> Losses:
        content = self.content_loss(batch.fake, batch.real)
        terms = {f"train/g_content_{self.content}": content}
        if self.adversarial_weight:
            terms["train/g_adversarial"] = self.adversarial_weight * self.objective.g_loss(self.critic(batch.fake))
        return Losses(terms, {"train/mse": F.mse_loss(batch.fake.detach(), batch.real)})

    @eval_metric("bicubic_l1, bicubic_psnr, bicubic_ssim (and bicubic_fid, ... with eval.features): the inputs "
                 "upsampled bicubically, scored as the outputs", needs="paired data")
    def bicubic_baseline(self, ctx):
        found, n = self.translations(ctx), ctx.options.num_samples
        inputs = self.batch_parts(self.eval_parts(ctx, n))[0][:n]
        upsampled = bicubic(self.to_unit(inputs), tuple(self.data_shape[1:]))
        metrics, _ = self.paired_scores(upsampled, found.targets)
        if ctx.options.features:
            metrics |= self.fidelity_against(ctx, upsampled, found.real, "B")[0]
        return {f"bicubic_{k}": v for k, v in metrics.items()}, {
            "bicubic": "the inputs upsampled by torch's bicubic interpolation (a = -0.75, align_corners=False), "
                       "clamped to [0, 1]"}
