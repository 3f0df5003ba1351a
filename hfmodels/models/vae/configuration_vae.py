"""Configuration of the variational autoencoder."""

from transformers import PreTrainedConfig

from .conv_autoencoder import check_sizes
from .validation import ValidatedConfig


class VAEConfig(ValidatedConfig, PreTrainedConfig):
    r"""
    A convolutional variational autoencoder (Kingma & Welling, 2014). The encoder (stride-2 3x3
    convolutions, one per entry of `hidden_sizes`, then a linear layer) gives the mean and
    log-variance of a diagonal Gaussian over `latent_dim` latents; the decoder mirrors it and gives
    the logits of a Bernoulli distribution per pixel. The loss is the negative ELBO with a weight on
    its KL term: reconstruction (binary cross-entropy summed over pixels) + `beta` * KL(q(z|x) || N(0, I)).

    Args:
        num_channels: channels of the input images (1 for grayscale, 3 for RGB).
        image_size: side of the square images; a multiple of 2 ** len(hidden_sizes).
        hidden_sizes: output channels of each encoder stage (the decoder uses them in reverse).
        latent_dim: size of the latent vector.
        beta: weight of the KL term (1 is the ELBO; more pulls the latents towards the prior).
    """

    model_type = "hfmodels-vae"

    num_channels: int = 1
    image_size: int = 8
    hidden_sizes: list[int] | tuple[int, ...] = (32, 64)
    latent_dim: int = 8
    beta: float = 1.0

    def check_fields(self) -> None:
        check_sizes(self)
        self.require("beta", self.beta >= 0, "must be a number >= 0")


__all__ = ["VAEConfig"]
