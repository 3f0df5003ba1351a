"""Configuration of the denoising diffusion model: its U-Net denoiser and its noise schedule."""

from transformers import PreTrainedConfig

from .validation import ValidatedConfig

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")  # diffusers' names


class DiffusionConfig(ValidatedConfig, PreTrainedConfig):
    r"""
    A denoising diffusion model (Ho et al., 2020): images are noised by a fixed Gaussian schedule of
    `num_train_timesteps` levels, `x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise`, and a time-conditioned
    U-Net learns to undo it. The loss is the mean squared error of its prediction (the noise, the velocity or the clean
    image: `prediction_type`) at a level drawn uniformly per image; for the noise it is the denoising score matching
    loss summed over noise levels with each level's term scaled by its sigma squared.

    The U-Net has one level per entry of `block_channels`, `layers_per_block` residual blocks each, a stride-2
    downsampling between levels (so `image_size` must be a multiple of 2 ** (levels - 1)), self-attention after the
    blocks of `attention_levels` and in the middle block, and skip connections from each down level to its up level.
    The timestep enters every residual block through a sinusoidal embedding and an MLP; with `num_classes` > 0 a class
    embedding is added to it, replaced by a "no class" embedding with probability `class_dropout_prob` in training so
    the same model samples unconditionally and with classifier-free guidance.

    The defaults, the cosine schedule and the velocity target (Salimans & Ho, 2022), gave better samples of 8x8 digits
    than DDPM's linear schedule and noise target, and DPM-Solver is unstable on the cosine schedule with the noise
    target. The schedule fields are diffusers' (`DDPMScheduler`'s): `save_pretrained` writes them as
    `scheduler_config.json`, from which DDPM, DDIM and DPM-Solver all sample. Pixels are in [-1, 1].

    Args:
        num_channels: channels of the images (1 for grayscale, 3 for RGB).
        image_size: side of the square images.
        block_channels: channels of each U-Net level, from the full resolution down.
        layers_per_block: residual blocks per level on the way down (one more on the way up).
        attention_levels: indices of the levels with self-attention; None: the lowest resolution only.
        num_attention_heads: heads of each self-attention (must divide the channels of the levels it is on).
        norm_num_groups: groups of the group norms (must divide every entry of `block_channels`).
        time_embedding_dim: width of the timestep (and class) embedding; None: 4 * block_channels[0].
        dropout: dropout inside the residual blocks.
        num_classes: classes to condition on (0: unconditional).
        class_dropout_prob: probability of training without the class, for classifier-free guidance.
        prediction_type: what the U-Net predicts: "epsilon" (the noise), "v_prediction" or "sample" (the clean image).
        num_train_timesteps: noise levels of the schedule.
        beta_schedule: "linear", "scaled_linear" or "squaredcos_cap_v2" (cosine).
        beta_start: the first beta of a linear schedule.
        beta_end: the last beta of a linear schedule.
    """

    model_type = "hfmodels-diffusion"

    num_channels: int = 1
    image_size: int = 8
    block_channels: list[int] | tuple[int, ...] = (16, 32, 32)
    layers_per_block: int = 1
    attention_levels: list[int] | None = None
    num_attention_heads: int = 4
    norm_num_groups: int = 8
    time_embedding_dim: int | None = None
    dropout: float = 0.0
    num_classes: int = 0
    class_dropout_prob: float = 0.1
    prediction_type: str = "v_prediction"
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    beta_start: float = 0.0001
    beta_end: float = 0.02

    @property
    def downsampling(self) -> int:
        """How much smaller the lowest level's images are than the input: 2 ** (levels - 1)."""
        return 2 ** (len(self.block_channels) - 1)

    @property
    def attended_levels(self) -> list[int]:
        return [len(self.block_channels) - 1] if self.attention_levels is None else self.attention_levels

    def check_fields(self) -> None:
        self.require("num_channels", self.num_channels in (1, 3), "must be 1 (grayscale) or 3 (RGB)")
        levels = len(self.block_channels)
        self.require("block_channels", levels and min(self.block_channels) >= 1,
                     "must be a non-empty list of positive integers")
        self.require("norm_num_groups", self.norm_num_groups >= 1
                     and all(channels % self.norm_num_groups == 0 for channels in self.block_channels),
                     f"must be a positive integer dividing every entry of block_channels {self.block_channels}")
        self.require("image_size", self.image_size >= self.downsampling and self.image_size % self.downsampling == 0,
                     f"must be a positive multiple of {self.downsampling}, the U-Net's downsampling "
                     f"(2 ** (levels - 1) for the {levels} levels of block_channels)")
        self.require("layers_per_block", self.layers_per_block >= 1, "must be a positive integer")
        self.require("attention_levels", all(0 <= level < levels for level in self.attended_levels),
                     f"must be None or indices of levels of block_channels, 0 .. {levels - 1}")
        attended = {self.block_channels[level] for level in self.attended_levels} | {self.block_channels[-1]}
        self.require("num_attention_heads", self.num_attention_heads >= 1
                     and all(channels % self.num_attention_heads == 0 for channels in attended),
                     f"must be a positive integer dividing the channels of the attended levels {sorted(attended)}")
        self.require("time_embedding_dim", self.time_embedding_dim is None or self.time_embedding_dim >= 1,
                     "must be None or a positive integer")
        self.require("dropout", 0 <= self.dropout < 1, "must be in [0, 1)")
        self.require("num_classes", self.num_classes >= 0, "must be 0 (unconditional) or the number of classes")
        self.require("class_dropout_prob", 0 <= self.class_dropout_prob < 1, "must be in [0, 1)")
        self.require("prediction_type", self.prediction_type in PREDICTION_TYPES, f"must be one of {PREDICTION_TYPES}")
        self.require("num_train_timesteps", self.num_train_timesteps >= 2, "must be an integer >= 2")
        self.require("beta_schedule", self.beta_schedule in BETA_SCHEDULES, f"must be one of {BETA_SCHEDULES}")
        self.require("beta_start", 0 < self.beta_start < 1, "must be in (0, 1)")
        self.require("beta_end", self.beta_start <= self.beta_end < 1, "must be in [beta_start, 1)")

    def scheduler_config(self) -> dict:
        """The noise schedule as a diffusers scheduler config (what `scheduler_config.json` holds)."""
        return {
            "_class_name": "DDPMScheduler",
            "num_train_timesteps": self.num_train_timesteps,
            "beta_schedule": self.beta_schedule,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "prediction_type": self.prediction_type,
            "clip_sample": True,  # pixels are in [-1, 1]
            "clip_sample_range": 1.0,
        }


__all__ = ["DiffusionConfig"]
