"""Configuration of the variational autoencoder."""

from transformers import PreTrainedConfig


class VAEConfig(PreTrainedConfig):
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

    def __post_init__(self, **kwargs):
        self.hidden_sizes = as_list(self.hidden_sizes)
        super().__post_init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        def fail(field: str, value, allowed: str):
            raise ValueError(f"{type(self).__name__}.{field}={value!r} is invalid: {allowed}.")

        if not is_int(self.num_channels) or self.num_channels not in (1, 3):
            fail("num_channels", self.num_channels, "must be 1 (grayscale) or 3 (RGB)")
        if not isinstance(self.hidden_sizes, list) or not self.hidden_sizes or any(
            not is_int(h) or h < 1 for h in self.hidden_sizes
        ):
            fail("hidden_sizes", self.hidden_sizes, "must be a non-empty list of positive integers")
        reduction = 2 ** len(self.hidden_sizes)
        if not is_int(self.image_size) or self.image_size < reduction or self.image_size % reduction:
            stages = len(self.hidden_sizes)
            allowed = f"must be a positive multiple of {reduction} for the {stages} stages of hidden_sizes"
            fail("image_size", self.image_size, f"{allowed}={self.hidden_sizes}")
        if not is_int(self.latent_dim) or self.latent_dim < 1:
            fail("latent_dim", self.latent_dim, "must be a positive integer")
        if not isinstance(self.beta, (int, float)) or not self.beta >= 0:
            fail("beta", self.beta, "must be a number >= 0")


def as_list(value):
    """A tuple (from a Python caller) as a list, as JSON gives it; anything else as it is, for the checks to name."""
    return list(value) if isinstance(value, tuple) else value


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # True is an int to Python, not to a config


__all__ = ["VAEConfig"]
