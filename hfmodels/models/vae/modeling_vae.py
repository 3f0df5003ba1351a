"""A convolutional variational autoencoder (VAE), as a transformers model: image -> Gaussian latent -> image."""

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, can_return_tuple

from .configuration_vae import VAEConfig
from .conv_autoencoder import (
    RENAMED_CONV_AUTOENCODER_WEIGHTS,
    ConvDecoder,
    ConvEncoder,
    check_latents,
    check_pixel_values,
    check_targets,
)
from .loading import StrictLoadingMixin
from .validation import values_are_readable

# log-variances are clamped to this range before exponentiating, as in diffusers' DiagonalGaussianDistribution
LOG_VAR_RANGE = (-30.0, 20.0)


@dataclass
class VAEOutput(ModelOutput):
    """
    Args:
        loss: the negative ELBO, `reconstruction_loss + beta * kl_loss`, when labels (the target images) are given.
        reconstruction_loss: binary cross-entropy between the decoded pixel distribution and `labels`,
            summed over pixels, averaged over the batch.
        kl_loss: KL(q(z|x) || N(0, I)) summed over latent dimensions, averaged over the batch.
        latents: (batch, latent_dim) the latents decoded: a sample from q(z|x) in training mode, its mean in
            eval mode (so eval outputs are deterministic); the first field the image-feature-extraction pipeline sees.
        reconstruction: (batch, num_channels, height, width) the decoded images, pixels in [0, 1].
        latent_mean: (batch, latent_dim) the mean of q(z|x).
        latent_log_var: (batch, latent_dim) the log-variance of q(z|x).
        hidden_states: with `output_hidden_states`, the feature map after each stage of the encoder, then of the
            decoder.
    """

    loss: torch.Tensor | None = None
    reconstruction_loss: torch.Tensor | None = None
    kl_loss: torch.Tensor | None = None
    latents: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    latent_mean: torch.Tensor | None = None
    latent_log_var: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class VAEPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config_class = VAEConfig
    config: VAEConfig
    base_model_prefix = "vae"
    renamed_weights = RENAMED_CONV_AUTOENCODER_WEIGHTS
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["ConvEncoder", "ConvDecoder"]
    _can_compile_fullgraph = True  # tests/model_tester.py compiles a training step with fullgraph=True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            init.kaiming_normal_(module.weight, nonlinearity="relu")
            init.zeros_(module.bias)


class VAEModel(VAEPreTrainedModel):
    """Encoder to a diagonal Gaussian, reparameterised sample, decoder; the negative ELBO when `labels` are given."""

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        self.encoder = ConvEncoder(config.num_channels, config.image_size, config.hidden_sizes, 2 * config.latent_dim)
        self.decoder = ConvDecoder(config.num_channels, config.image_size, config.hidden_sizes, config.latent_dim)
        self.post_init()

    def encode(
        self, pixel_values: torch.Tensor, stages: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (batch, num_channels, image_size, image_size), pixels in [0, 1] -> the mean and log-variance
        of q(z|x), each (batch, latent_dim); `stages`, where given, gets the encoder's feature maps."""
        check_pixel_values(pixel_values, self.config)
        mean, log_var = self.encoder(pixel_values, stages).chunk(2, dim=-1)
        return mean, log_var.clamp(*LOG_VAR_RANGE)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (batch, latent_dim) -> images (batch, num_channels, image_size, image_size), pixels in [0, 1]."""
        check_latents(latents, self.config)
        return torch.sigmoid(self.decoder(latents))

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> VAEOutput:
        r"""
        labels: the target images, shaped like `pixel_values` with pixels in [0, 1]: the input itself for a
            plain VAE (what the vae family passes).
        """
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        stages = [] if output_hidden_states else None
        mean, log_var = self.encode(pixel_values, stages)  # (batch, latent_dim) each
        if self.training:  # the reparameterisation trick: z = mean + std * noise, differentiable in mean and std
            latents = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)  # (batch, latent_dim)
        else:
            latents = mean
        logits = self.decoder(latents, stages)  # (batch, num_channels, height, width)

        loss = reconstruction_loss = kl_loss = None
        if labels is not None:
            check_targets(labels, pixel_values)
            if values_are_readable(labels) and labels.numel() and (labels.min() < 0 or labels.max() > 1):
                raise ValueError(
                    f"labels (target images) must have pixels in [0, 1] for the Bernoulli reconstruction loss, "
                    f"got values from {labels.min().item()} to {labels.max().item()}"
                )
            targets = labels.to(logits.dtype)
            per_pixel = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
            reconstruction_loss = per_pixel.flatten(1).sum(1).mean()
            kl_loss = (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp())).sum(1).mean()
            loss = reconstruction_loss + self.config.beta * kl_loss

        return VAEOutput(
            loss=loss, reconstruction_loss=reconstruction_loss, kl_loss=kl_loss, latents=latents,
            reconstruction=torch.sigmoid(logits), latent_mean=mean, latent_log_var=log_var,
            hidden_states=tuple(stages) if output_hidden_states else None,
        )

    @torch.no_grad()
    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decodes `num_samples` latents drawn from the prior N(0, I): (num_samples, num_channels, height, width).
        The latents are drawn on the generator's device, so a seeded CPU generator gives the same images anywhere."""
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        device = generator.device if generator is not None else self.device
        latents = torch.randn(num_samples, self.config.latent_dim, generator=generator, device=device)
        return self.decode(latents.to(self.device, self.dtype))

    @torch.no_grad()
    def interpolate(self, a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
        """Decodes `steps` evenly spaced points on the line between the latent means of images `a` and `b`, both ends
        included. Batches of pairs, as everything else takes them: `a` and `b` (batch, num_channels, height, width)
        -> (batch, steps, num_channels, height, width); one pair, each (num_channels, height, width) -> (steps, ...)."""
        if steps < 2:
            raise ValueError(f"steps must be >= 2 (both ends are included), got {steps}")
        if a.shape != b.shape or a.dim() not in (3, 4):
            raise ValueError(f"a and b must be images of one shape, (num_channels, height, width) or batches (batch, "
                             f"num_channels, height, width); got {tuple(a.shape)} and {tuple(b.shape)}")
        pairs = (a[None], b[None]) if a.dim() == 3 else (a, b)
        start, end = self.encode(torch.cat(pairs))[0].chunk(2)  # (batch, latent_dim) each
        weights = torch.linspace(0, 1, steps, device=start.device, dtype=start.dtype)[:, None, None]  # (steps, 1, 1)
        images = self.decode(torch.lerp(start, end, weights).flatten(0, 1))  # (steps * batch, channels, h, w)
        images = images.unflatten(0, (steps, -1)).transpose(0, 1)  # (batch, steps, channels, height, width)
        return images[0] if a.dim() == 3 else images


__all__ = ["VAEPreTrainedModel", "VAEModel", "VAEOutput"]
