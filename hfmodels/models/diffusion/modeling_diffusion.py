"""A denoising diffusion model, as a transformers model: a time-conditioned U-Net trained to undo Gaussian noise.

Training needs only torch: `forward` noises the images by the config's schedule and returns the denoising loss.
Sampling runs a diffusers scheduler (DDPM, DDIM or DPM-Solver) built from the same schedule; diffusers is imported
only there, so a remote-code user without it can load, train and evaluate the model.
"""

import inspect
import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, can_return_tuple

from .configuration_diffusion import DiffusionConfig
from .loading import StrictLoadingMixin
from .validation import check_class_ids, values_are_readable

SCHEDULER_CONFIG_NAME = "scheduler_config.json"  # diffusers' file name: `DDIMScheduler.from_pretrained(folder)`
# `scheduler=` names -> diffusers' scheduler classes
SCHEDULERS = {"ddpm": "DDPMScheduler", "ddim": "DDIMScheduler", "dpm-solver": "DPMSolverMultistepScheduler"}
# DDIM without clipping its prediction of the image to [-1, 1]: clipped, its guided digits were judged the asked-for
# class 84% of the time, unclipped 100% (DDPM, whose steps add noise after the clip, was at 100% clipped)
SCHEDULER_OPTIONS = {"ddim": {"clip_sample": False}}
MAX_BETA = 0.999  # diffusers' cap of the cosine schedule's betas
EVAL_SEED = 0


@dataclass
class DiffusionOutput(ModelOutput):
    """
    Args:
        loss: the mean squared error between `prediction` and its target (the noise, the velocity or the clean
            image, as `config.prediction_type` says), when labels (the clean images) are given.
        prediction: (batch, num_channels, height, width) what the U-Net predicts from `noisy_pixel_values`.
        noisy_pixel_values: (batch, num_channels, height, width) the images noised to `timesteps`.
        timesteps: (batch,) the noise level of each image, 0 .. num_train_timesteps - 1.
        noise: (batch, num_channels, height, width) the Gaussian noise added.
    """

    loss: torch.Tensor | None = None
    prediction: torch.Tensor | None = None
    noisy_pixel_values: torch.Tensor | None = None
    timesteps: torch.Tensor | None = None
    noise: torch.Tensor | None = None


def alphas_cumprod_of(config: DiffusionConfig) -> torch.Tensor:
    """(num_train_timesteps,) alpha_bar_t = prod_{s <= t} (1 - beta_s), computed as diffusers' DDPMScheduler does."""
    steps = config.num_train_timesteps
    if config.beta_schedule == "linear":
        betas = torch.linspace(config.beta_start, config.beta_end, steps, dtype=torch.float32)
    elif config.beta_schedule == "scaled_linear":
        betas = torch.linspace(config.beta_start**0.5, config.beta_end**0.5, steps, dtype=torch.float32) ** 2
    else:  # squaredcos_cap_v2 (Nichol & Dhariwal, 2021), in double precision like diffusers' Python floats

        def alpha_bar(t: torch.Tensor) -> torch.Tensor:
            return torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        t = torch.arange(steps, dtype=torch.float64)
        betas = (1 - alpha_bar((t + 1) / steps) / alpha_bar(t / steps)).clamp(max=MAX_BETA).float()
    return torch.cumprod(1.0 - betas, dim=0)


class NoiseSchedule(nn.Module):
    """The schedule's alpha_bar_t as a buffer (not saved: the config defines it), and the noising it gives."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.register_buffer("alphas_cumprod", alphas_cumprod_of(config), persistent=False)

    def coefficients(self, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t), each (batch, 1, 1, 1)."""
        alpha_bar = self.alphas_cumprod[timesteps][:, None, None, None]
        return alpha_bar.sqrt(), (1 - alpha_bar).sqrt()


def timestep_embedding(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """(batch,) -> (batch, dim) sinusoids of geometrically spaced frequencies, cosines first (as in DDPM)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000) * torch.arange(half, device=timesteps.device) / half)  # (half,)
    angles = timesteps.float()[:, None] * frequencies[None]  # (batch, half)
    embedding = torch.cat([angles.cos(), angles.sin()], dim=-1)
    return nn.functional.pad(embedding, (0, dim % 2))


class ResidualBlock(nn.Module):
    """Norm, SiLU, 3x3 convolution, plus the time embedding, twice; a 1x1 convolution on the skip where the
    channels change."""

    def __init__(self, in_channels: int, out_channels: int, config: DiffusionConfig, embedding_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(config.norm_num_groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.time_proj = nn.Linear(embedding_dim, out_channels)
        self.norm2 = nn.GroupNorm(config.norm_num_groups, out_channels)
        self.dropout = nn.Dropout(config.dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, hidden_states: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        x = self.conv1(nn.functional.silu(self.norm1(hidden_states)))  # (batch, out_channels, h, w)
        x = x + self.time_proj(nn.functional.silu(embedding))[:, :, None, None]
        x = self.conv2(self.dropout(nn.functional.silu(self.norm2(x))))
        return self.shortcut(hidden_states) + x


class SelfAttention(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, with a residual connection."""

    def __init__(self, channels: int, config: DiffusionConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.norm = nn.GroupNorm(config.norm_num_groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.out_proj = nn.Linear(channels, channels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = hidden_states.shape
        x = self.norm(hidden_states).flatten(2).transpose(1, 2)  # (batch, pixels, channels)
        qkv = self.qkv(x).unflatten(-1, (3, self.num_heads, channels // self.num_heads))
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, pixels, head_dim)
        attended = nn.functional.scaled_dot_product_attention(query, key, value).transpose(1, 2).flatten(2)
        return hidden_states + self.out_proj(attended).transpose(1, 2).reshape(batch, channels, height, width)


class UNetLevel(nn.Module):
    """Residual blocks (each followed by self-attention where the config asks) at one resolution, then a resampling
    to the next level (a stride-2 convolution down, nearest upsampling and a convolution up, or none)."""

    def __init__(self, in_channels: int, channels: int, num_blocks: int, attention: bool, resample: nn.Module,
                 config: DiffusionConfig, embedding_dim: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            ResidualBlock(in_channels if i == 0 else channels, channels, config, embedding_dim)
            for i in range(num_blocks)
        )
        self.attentions = nn.ModuleList(SelfAttention(channels, config) for _ in range(num_blocks if attention else 0))
        self.resample = resample

    def forward(self, hidden_states: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            hidden_states = block(hidden_states, embedding)
            if self.attentions:
                hidden_states = self.attentions[i](hidden_states)
        return hidden_states


def upsample(channels: int) -> nn.Module:
    return nn.Sequential(OrderedDict(upsample=nn.Upsample(scale_factor=2, mode="nearest"),
                                     conv=nn.Conv2d(channels, channels, 3, padding=1)))


class DiffusionUNet(nn.Module):
    """(noisy images, timesteps, class ids) -> the prediction, shaped like the images."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        channels, last = config.block_channels, len(config.block_channels) - 1
        attended = set(config.attended_levels)
        self.timestep_width = channels[0]  # the sinusoidal embedding's width (not read off a layer an adapter wraps)
        self.embedding_dim = config.time_embedding_dim or 4 * channels[0]
        self.time_mlp = nn.Sequential(OrderedDict(fc_in=nn.Linear(channels[0], self.embedding_dim), act=nn.SiLU(),
                                                  fc_out=nn.Linear(self.embedding_dim, self.embedding_dim)))
        # one more row than classes: the "no class" of unconditional and classifier-free guided sampling
        self.class_embedding = nn.Embedding(config.num_classes + 1, self.embedding_dim) if config.num_classes else None
        self.conv_in = nn.Conv2d(config.num_channels, channels[0], kernel_size=3, padding=1)
        self.down = nn.ModuleList()
        for i, width in enumerate(channels):
            resample = nn.Conv2d(width, width, 3, stride=2, padding=1) if i < last else nn.Identity()
            self.down.append(UNetLevel(channels[max(i - 1, 0)], width, config.layers_per_block, i in attended,
                                       resample, config, self.embedding_dim))
        self.middle = UNetLevel(channels[last], channels[last], 2, True, nn.Identity(), config, self.embedding_dim)
        self.up = nn.ModuleList()
        for i in reversed(range(len(channels))):  # from the lowest resolution up; input: the level below + the skip
            resample = upsample(channels[i]) if i > 0 else nn.Identity()
            self.up.append(UNetLevel(channels[min(i + 1, last)] + channels[i], channels[i], config.layers_per_block + 1,
                                     i in attended, resample, config, self.embedding_dim))
        self.norm_out = nn.GroupNorm(config.norm_num_groups, channels[0])
        self.conv_out = nn.Conv2d(channels[0], config.num_channels, kernel_size=3, padding=1)

    def forward(self, sample: torch.Tensor, timesteps: torch.Tensor, class_ids: torch.Tensor | None) -> torch.Tensor:
        embedding = self.time_mlp(timestep_embedding(timesteps, self.timestep_width))  # (batch, embedding_dim)
        if self.class_embedding is not None:
            embedding = embedding + self.class_embedding(class_ids)
        hidden_states = self.conv_in(sample)  # (batch, block_channels[0], height, width)
        skips = []
        for level in self.down:
            hidden_states = level(hidden_states, embedding)
            skips.append(hidden_states)  # (batch, block_channels[i], height / 2**i, width / 2**i)
            hidden_states = level.resample(hidden_states)
        hidden_states = self.middle(hidden_states, embedding)
        for level in self.up:
            hidden_states = level(torch.cat([hidden_states, skips.pop()], dim=1), embedding)
            hidden_states = level.resample(hidden_states)
        return self.conv_out(nn.functional.silu(self.norm_out(hidden_states)))  # (batch, num_channels, h, w)


class DiffusionPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config_class = DiffusionConfig
    config: DiffusionConfig
    base_model_prefix = "diffusion"
    # index names (`time_mlp.0`, `up.0.resample.1`) before they had names people (and a LoRA `target=`) can read:
    # folders saved before load through these
    renamed_weights = {r"time_mlp\.0\.": "time_mlp.fc_in.", r"time_mlp\.2\.": "time_mlp.fc_out.",
                       r"resample\.1\.": "resample.conv."}
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    _no_split_modules = ["UNetLevel"]
    _supports_sdpa = True
    _can_compile_fullgraph = True  # tests/model_tester.py compiles a training step with fullgraph=True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            init.xavier_uniform_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.GroupNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, std=1.0)
        elif isinstance(module, NoiseSchedule):
            init.copy_(module.alphas_cumprod, alphas_cumprod_of(self.config))


class DiffusionForImageGeneration(DiffusionPreTrainedModel):
    """The U-Net denoiser and its noise schedule: the denoising loss when `labels` are given, `sample` to generate."""

    def __init__(self, config: DiffusionConfig):
        super().__init__(config)
        self.unet = DiffusionUNet(config)
        self.schedule = NoiseSchedule(config)
        self.post_init()

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """transformers' `save_pretrained`, plus the noise schedule as diffusers' `scheduler_config.json`."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            with open(os.path.join(save_directory, SCHEDULER_CONFIG_NAME), "w") as file:
                json.dump(self.config.scheduler_config(), file, indent=2)
                file.write("\n")

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        class_labels: torch.Tensor | None = None,
        timesteps: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> DiffusionOutput:
        r"""
        pixel_values: (batch, num_channels, image_size, image_size) clean images, pixels in [-1, 1] (the processor's).
        labels: the clean images the loss's target is made from: `pixel_values` itself (what the family passes).
        class_labels: (batch,) class ids of a class-conditioned model (`config.num_classes` > 0); None: no class.
            In training each is dropped with probability `config.class_dropout_prob` (classifier-free guidance).
        timesteps: (batch,) noise levels; None: drawn uniformly from 0 .. num_train_timesteps - 1.
        noise: shaped like `pixel_values`; None: drawn from N(0, I). In eval mode both are drawn from a generator
            seeded with `EVAL_SEED` at every call: the same batch gets the same loss.
        """
        self.check_inputs(pixel_values, labels, class_labels, timesteps, noise)
        batch, device = pixel_values.shape[0], pixel_values.device
        # eval mode draws from a generator seeded at each call (on the CPU, the same on any device): a validation
        # split scores the same noise at every epoch, so its loss compares epochs rather than draws
        generator = None if self.training else torch.Generator().manual_seed(EVAL_SEED)
        draw_on = device if generator is None else torch.device("cpu")
        if timesteps is None:
            timesteps = torch.randint(0, self.config.num_train_timesteps, (batch,), generator=generator,
                                      device=draw_on).to(device)
        if noise is None:
            noise = torch.randn(pixel_values.shape, generator=generator, device=draw_on).to(device, pixel_values.dtype)
        signal, sigma = self.schedule.coefficients(timesteps)  # each (batch, 1, 1, 1)
        noisy = (signal * pixel_values + sigma * noise).to(pixel_values.dtype)  # (batch, channels, height, width)
        prediction = self.unet(noisy, timesteps, self.class_ids(class_labels, batch, pixel_values.device))

        loss = None
        if labels is not None:
            targets = {"epsilon": noise, "sample": labels, "v_prediction": signal * noise - sigma * labels}
            loss = nn.functional.mse_loss(prediction.float(), targets[self.config.prediction_type].float())
        return DiffusionOutput(loss=loss, prediction=prediction, noisy_pixel_values=noisy, timesteps=timesteps,
                               noise=noise)

    def class_ids(self, class_labels: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor | None:
        """The class embedding's rows: the classes, or the "no class" row (index num_classes) where none is given
        or where training drops it."""
        if not self.config.num_classes:
            return None
        no_class = torch.full((batch,), self.config.num_classes, device=device, dtype=torch.long)
        if class_labels is None:
            return no_class
        class_labels = class_labels.to(device=device, dtype=torch.long)
        if self.training and self.config.class_dropout_prob > 0:
            dropped = torch.rand(batch, device=device) < self.config.class_dropout_prob
            return torch.where(dropped, no_class, class_labels)
        return class_labels

    def check_inputs(self, pixel_values, labels, class_labels, timesteps, noise) -> None:
        config = self.config
        expected = (config.num_channels, config.image_size, config.image_size)
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ValueError(
                f"pixel_values must have shape (batch, {', '.join(map(str, expected))}) for this model "
                f"(config.num_channels, config.image_size), got {tuple(pixel_values.shape)}"
            )
        for name, value in (("labels", labels), ("noise", noise)):
            if value is not None and value.shape != pixel_values.shape:
                raise ValueError(f"{name} must have the shape of pixel_values {tuple(pixel_values.shape)}, got "
                                 f"{tuple(value.shape)}")
        batch = pixel_values.shape[0]
        if timesteps is not None:
            if timesteps.shape != (batch,) or timesteps.is_floating_point():
                raise ValueError(f"timesteps must be integers of shape ({batch},), one per image, got "
                                 f"{timesteps.dtype} of shape {tuple(timesteps.shape)}")
            if values_are_readable(timesteps) and batch and not (
                0 <= timesteps.min() and timesteps.max() < config.num_train_timesteps
            ):
                raise ValueError(f"timesteps must be in 0 .. {config.num_train_timesteps - 1} "
                                 f"(config.num_train_timesteps), got {timesteps.tolist()[:10]}")
        self.check_class_labels(class_labels, batch)

    def check_class_labels(self, class_labels: torch.Tensor | None, batch: int) -> None:
        if class_labels is None:
            return
        if not self.config.num_classes:
            raise ValueError("class_labels were given to an unconditional model (config.num_classes=0)")
        if class_labels.shape != (batch,) or class_labels.is_floating_point():
            raise ValueError(f"class_labels must be integers of shape ({batch},), one per image, got "
                             f"{class_labels.dtype} of shape {tuple(class_labels.shape)}")
        check_class_ids(class_labels, self.config.num_classes)

    # --- sampling -------------------------------------------------------------------------------------------------

    def make_scheduler(self, scheduler="ddim"):
        """A diffusers scheduler of this model's noise schedule: "ddpm", "ddim", "dpm-solver", or a diffusers
        scheduler instance whose schedule is this model's (used as it is)."""
        if not isinstance(scheduler, str):
            for field in ("num_train_timesteps", "prediction_type"):
                theirs = getattr(getattr(scheduler, "config", None), field, None)
                if theirs != getattr(self.config, field):
                    raise ValueError(f"scheduler {type(scheduler).__name__} has {field}={theirs!r}, this model "
                                     f"{getattr(self.config, field)!r} (config.{field})")
            return scheduler
        if scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {scheduler!r}: choose one of {', '.join(SCHEDULERS)}, or pass a "
                             "diffusers scheduler")
        try:
            import diffusers
        except ImportError as error:
            raise ImportError(
                "sampling from a diffusion model runs a diffusers scheduler: pip install 'diffusers>=0.30' "
                "(loading, training and the forward pass do not need it)"
            ) from error
        scheduler_class = getattr(diffusers, SCHEDULERS[scheduler])
        accepted = inspect.signature(scheduler_class.__init__).parameters  # DPM-Solver has no clip_sample
        schedule = {key: value for key, value in self.config.scheduler_config().items() if key in accepted}
        return scheduler_class.from_config({**schedule, **SCHEDULER_OPTIONS.get(scheduler, {})})

    @torch.no_grad()
    def sample(
        self,
        num_samples: int,
        num_inference_steps: int = 50,
        scheduler="ddim",
        generator: torch.Generator | None = None,
        labels: int | list[int] | torch.Tensor | None = None,
        guidance_scale: float = 2.0,
    ) -> torch.Tensor:
        """Generates `num_samples` images from Gaussian noise in `num_inference_steps` denoising steps of `scheduler`
        ("ddpm", "ddim", "dpm-solver" or a diffusers scheduler): (num_samples, num_channels, height, width), pixels in
        [0, 1]. `labels` (a class-conditioned model): one class id for all or one per sample, sampled with
        classifier-free guidance of `guidance_scale` (1: the conditional model alone; more: further from the
        unconditional one); None samples unconditionally. Noise is drawn on the generator's device, so a seeded CPU
        generator gives the same images anywhere."""
        return self.denoising_trajectory(num_samples, num_inference_steps, scheduler, generator, labels,
                                         guidance_scale, num_frames=1)[-1]

    @torch.no_grad()
    def denoising_trajectory(
        self,
        num_samples: int,
        num_inference_steps: int = 50,
        scheduler="ddim",
        generator: torch.Generator | None = None,
        labels: int | list[int] | torch.Tensor | None = None,
        guidance_scale: float = 2.0,
        num_frames: int = 10,
    ) -> torch.Tensor:
        """`sample`, keeping `num_frames` evenly spaced states from the noise (first, when num_frames > 1) to the
        images (last): (frames, num_samples, num_channels, height, width), pixels in [0, 1]; fewer frames than
        `num_frames` where there are fewer steps."""
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        if not isinstance(num_inference_steps, int) or not 1 <= num_inference_steps <= self.config.num_train_timesteps:
            raise ValueError(f"num_inference_steps must be an integer in 1 .. {self.config.num_train_timesteps} "
                             f"(config.num_train_timesteps), got {num_inference_steps!r}")
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
        class_ids = self.sampling_classes(labels, num_samples)
        scheduler = self.make_scheduler(scheduler)
        scheduler.set_timesteps(num_inference_steps, device=self.device)

        config = self.config
        device = generator.device if generator is not None else self.device
        shape = (num_samples, config.num_channels, config.image_size, config.image_size)
        images = torch.randn(shape, generator=generator, device=device).to(self.device, self.dtype)
        images = images * scheduler.init_noise_sigma
        steps = len(scheduler.timesteps)
        kept = {round(i * steps / (num_frames - 1)) for i in range(num_frames)} if num_frames > 1 else {steps}
        frames = [images] if 0 in kept else []
        for step, t in enumerate(scheduler.timesteps, start=1):
            prediction = self.guided_prediction(scheduler.scale_model_input(images, t), t, class_ids, guidance_scale)
            images = scheduler.step(prediction, t, images, generator=generator).prev_sample
            if step in kept:
                frames.append(images)
        return ((torch.stack(frames).float() + 1) / 2).clamp(0, 1)

    def sampling_classes(self, labels, num_samples: int) -> torch.Tensor | None:
        """The class ids to sample (num_samples,), or None: unconditional."""
        if labels is None:
            return None
        class_ids = torch.as_tensor(labels, device=self.device)
        if class_ids.ndim == 0:
            class_ids = class_ids.expand(num_samples)
        self.check_class_labels(class_ids, num_samples)
        return class_ids.long()

    def guided_prediction(self, images: torch.Tensor, t: torch.Tensor, class_ids: torch.Tensor | None,
                          guidance_scale: float) -> torch.Tensor:
        """The U-Net's prediction at step `t`; with classes and guidance_scale != 1, classifier-free guided:
        unconditional + guidance_scale * (conditional - unconditional)."""
        timesteps = t.to(self.device).expand(images.shape[0])
        if class_ids is None:
            return self.unet(images, timesteps, self.class_ids(None, images.shape[0], self.device))
        if guidance_scale == 1:
            return self.unet(images, timesteps, class_ids)
        no_class = self.class_ids(None, images.shape[0], self.device)
        both = self.unet(images.repeat(2, 1, 1, 1), timesteps.repeat(2), torch.cat([class_ids, no_class]))
        conditional, unconditional = both.chunk(2)
        return unconditional + guidance_scale * (conditional - unconditional)


__all__ = ["DiffusionPreTrainedModel", "DiffusionForImageGeneration", "DiffusionOutput"]
