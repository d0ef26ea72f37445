"""Sequence autoencoder: the encoder's embedding conditions an RNN decoder that rebuilds the
clean input sequence; the loss compares images after the view's inverse."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ObjectiveConfig
from ..data.augment import BatchAugment
from ..data.pipeline import SequencePipeline
from ..errors import UserError
from ..models.heads import SequenceDecoder

KEYS = {
    "decoder_hidden": {"default": 256, "lo": 1, "hi": 65536, "help": "the RNN decoder's hidden units"},
    "teacher_forcing": {"default": True, "help": "feed the decoder the previous true step"},
    "denoise": {"default": "mask", "choices": ["none", "mask", "augment"], "help": "what the encoder sees"},
    "recon_loss": {"default": "auto", "choices": ["auto", "mse", "bce"], "help": "auto: bce when binarized"},
}
DENOISE = tuple(KEYS["denoise"]["choices"])
MIN_BATCH = 1  # each image is its own target


class AutoencoderObjective(nn.Module):
    """denoise: none (encode the clean view), mask (encode it with noise and erasing only),
    augment (encode a fully augmented view); the target is always the clean image.
    recon_loss: mse on normalized pixels, or bce on [0, 1] pixels (binarized input)."""

    def __init__(self, encoder: nn.Module, pipeline: SequencePipeline, cfg: ObjectiveConfig,
                 num_classes: int, binarized: bool = False, **_):
        super().__init__()
        if cfg.denoise not in DENOISE:
            raise UserError(f"unknown objective.denoise '{cfg.denoise}'; use one of: {', '.join(DENOISE)}")
        if cfg.recon_loss not in ("auto", "mse", "bce"):
            raise UserError(f"unknown objective.recon_loss '{cfg.recon_loss}'; use auto, mse or bce")
        self.encoder, self.pipeline, self.denoise = encoder, pipeline, cfg.denoise
        self.bce = cfg.recon_loss == "bce" or (cfg.recon_loss == "auto" and binarized)
        t, d = pipeline.seq_shape
        self.decoder = SequenceDecoder(encoder.out_dim, d, t, encoder.cell, cfg.decoder_hidden,
                                       cfg.teacher_forcing)
        aug = pipeline.augment.cfg
        # masking keeps the geometry: only noise and erasing from the configured augmentation
        self.mask = BatchAugment(type(aug)(crop_scale=1.0, rotate=0, translate=0, shear=0, noise=aug.noise,
                                           erase_prob=max(aug.erase_prob, 0.5), erase_max=aug.erase_max,
                                           brightness=0, contrast=0, hflip=False))

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None):
        p = self.pipeline
        clean01 = p.unit(x)
        target_seq = p.sequence(clean01)                   # normalized, [B, T, D]
        if self.denoise == "none":
            inp = target_seq
        elif self.denoise == "mask":
            inp = p.sequence(self.mask(clean01, generator))
        else:
            inp = p.sequence(p.augment(clean01, generator))
        out = self.decoder(self.encoder(inp), target_seq)
        image = p.view.to_image(out)                       # through the view's exact inverse
        if self.bce:
            loss = F.binary_cross_entropy_with_logits(image, clean01)
        else:
            loss = F.mse_loss(image, p.normalized(clean01))
        return loss, {}


OBJECTIVE = AutoencoderObjective
