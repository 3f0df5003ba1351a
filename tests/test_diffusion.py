import json
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from transformers.dynamic_module_utils import get_class_from_dynamic_module

from hfmodels import DiffusionConfig, DiffusionForImageGeneration, DiffusionImageProcessor
from hfmodels.testing.digits_judge import digits_judge, frechet_distance
from hfmodels.training import TrainingArguments, train
from hfmodels.training.ema import ExponentialMovingAverage
from hfmodels.training.evaluation import load_trained

from .model_tester import ModelTesterMixin

diffusers = pytest.importorskip("diffusers")  # the dev extra installs it: sampling needs it

SCHEDULERS = {"ddpm": diffusers.DDPMScheduler, "ddim": diffusers.DDIMScheduler,
              "dpm-solver": diffusers.DPMSolverMultistepScheduler}


class TestDiffusion(ModelTesterMixin):
    all_model_classes = (DiffusionForImageGeneration,)
    config_class = DiffusionConfig
    invalid_config_values = [
        ("num_channels", 2),
        ("image_size", 6),  # not a multiple of 4, the downsampling of 3 levels
        ("block_channels", []),
        ("norm_num_groups", 3),  # divides no level's channels
        ("layers_per_block", 0),
        ("attention_levels", [3]),
        ("num_attention_heads", 3),
        ("dropout", float("nan")),
        ("num_classes", -1),
        ("class_dropout_prob", 1.0),
        ("prediction_type", "noise"),
        ("num_train_timesteps", 1),
        ("beta_schedule", "cosine"),
        ("beta_start", 0.0),
        ("beta_end", 1.5),
    ]

    def get_config(self, **overrides):
        values = {"num_channels": 1, "image_size": 8, "block_channels": [4, 8, 8], "norm_num_groups": 4,
                  "num_attention_heads": 2, "num_classes": 3, "num_train_timesteps": 20}
        return DiffusionConfig(**{**values, **overrides})

    def get_inputs(self, batch_size=3, seed=0):
        """Clean images in [-1, 1] with their classes, and the noise levels and noise given, so that the outputs are
        a function of the inputs."""
        generator = torch.Generator().manual_seed(seed)
        pixel_values = torch.rand(batch_size, 1, 8, 8, generator=generator) * 2 - 1
        return {
            "pixel_values": pixel_values, "labels": pixel_values.clone(),
            "class_labels": torch.randint(0, 3, (batch_size,), generator=generator),
            "timesteps": torch.randint(0, 20, (batch_size,), generator=generator),
            "noise": torch.randn(batch_size, 1, 8, 8, generator=generator),
        }

    def test_loss_is_the_mse_to_the_target_of_the_prediction_type(self):
        """x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) noise, with diffusers' alpha_bar; the target is the noise,
        the velocity sqrt(alpha_bar) noise - sqrt(1 - alpha_bar) x_0, or x_0."""
        inputs = self.get_inputs(batch_size=4)
        x0, noise, t = inputs["labels"], inputs["noise"], inputs["timesteps"]
        scheduler = diffusers.DDPMScheduler(num_train_timesteps=20, beta_schedule="squaredcos_cap_v2")
        expected_noisy = scheduler.add_noise(x0, noise, t)
        alpha_bar = scheduler.alphas_cumprod[t][:, None, None, None]
        targets = {"epsilon": noise, "sample": x0,
                   "v_prediction": scheduler.get_velocity(x0, noise, t)}
        for prediction_type, target in targets.items():
            torch.manual_seed(0)
            model = DiffusionForImageGeneration(self.get_config(prediction_type=prediction_type)).eval()
            outputs = model(**inputs)
            torch.testing.assert_close(outputs.noisy_pixel_values, expected_noisy)
            torch.testing.assert_close(outputs.loss, torch.mean((outputs.prediction - target) ** 2))
        torch.testing.assert_close(targets["v_prediction"], alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * x0)

    @pytest.mark.parametrize("beta_schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"])
    def test_the_schedule_is_diffusers_and_is_saved_for_every_sampler(self, beta_schedule, tmp_path):
        config = self.get_config(beta_schedule=beta_schedule, num_train_timesteps=1000)
        model = DiffusionForImageGeneration(config)
        model.save_pretrained(tmp_path)
        for name, scheduler_class in SCHEDULERS.items():
            scheduler = scheduler_class.from_pretrained(tmp_path)  # scheduler_config.json beside the weights
            assert scheduler.config.beta_schedule == beta_schedule
            assert scheduler.config.prediction_type == config.prediction_type == "v_prediction"
            torch.testing.assert_close(model.schedule.alphas_cumprod, scheduler.alphas_cumprod, rtol=0, atol=0)
            assert type(model.make_scheduler(name)) is scheduler_class
        assert json.loads((tmp_path / "scheduler_config.json").read_text())["_class_name"] == "DDPMScheduler"

    def test_eval_mode_draws_the_same_noise_every_call_and_training_new_noise(self):
        model = self.make_model()
        inputs = {key: self.get_inputs()[key] for key in ("pixel_values", "labels", "class_labels")}
        first, second = model(**inputs), model(**inputs)
        torch.testing.assert_close(first.loss, second.loss, rtol=0, atol=0)
        model.train()
        assert not torch.equal(model(**inputs).noise, model(**inputs).noise)

    def test_same_seed_same_samples_after_reload_and_through_remote_code(self, tmp_path, monkeypatch):
        """For each sampler. The code saved beside the weights loads, runs forward and says diffusers is needed
        when it is missing, then samples what the installed code samples. (Here in this process, where hfmodels is
        importable: tests/test_compat.py samples through the saved code with hfmodels blocked, under the oldest and
        the newest transformers.)"""
        model = self.make_model()
        model.save_pretrained(tmp_path / "model")
        settings, classes = {"ddpm": 20, "ddim": 5, "dpm-solver": 4}, [0, 1, 2, 0]

        def samples_of(model, name: str, seed: int = 1) -> torch.Tensor:
            generator = torch.Generator().manual_seed(seed)
            return model.sample(4, settings[name], name, generator=generator, labels=classes)

        expected = {name: samples_of(model, name) for name in settings}
        for name in settings:
            torch.testing.assert_close(samples_of(model, name), expected[name], rtol=0, atol=0)
            assert expected[name].shape == (4, 1, 8, 8) and 0 <= expected[name].min() and expected[name].max() <= 1
            assert not torch.equal(expected[name], samples_of(model, name, seed=2))
        reloaded = DiffusionForImageGeneration.from_pretrained(tmp_path / "model").eval()
        for name in settings:
            torch.testing.assert_close(samples_of(reloaded, name), expected[name], rtol=0, atol=0)

        with monkeypatch.context() as blocked:
            blocked.setitem(sys.modules, "diffusers", None)  # `import diffusers` raises ImportError
            saved_class = get_class_from_dynamic_module(  # what auto_map names, imported from the saved files
                "modeling_diffusion.DiffusionForImageGeneration", str(tmp_path / "model")
            )
            remote = saved_class.from_pretrained(tmp_path / "model").eval()
            assert not type(remote).__module__.startswith("hfmodels"), type(remote).__module__
            images = torch.rand(2, 1, 8, 8) * 2 - 1
            assert torch.isfinite(remote(images, labels=images).loss)
            with pytest.raises(ImportError, match=r"runs a diffusers scheduler: pip install 'diffusers>=0.30'"):
                remote.sample(2, 5)
        for name in settings:
            torch.testing.assert_close(samples_of(remote, name), expected[name], rtol=0, atol=0)

    def test_guidance_and_trajectory(self):
        model = self.make_model()
        generator = lambda: torch.Generator().manual_seed(0)  # noqa: E731
        plain = model.sample(3, 4, "ddim", generator=generator(), labels=1, guidance_scale=1.0)
        guided = model.sample(3, 4, "ddim", generator=generator(), labels=1, guidance_scale=3.0)
        unconditional = model.sample(3, 4, "ddim", generator=generator())
        assert not torch.equal(plain, guided) and not torch.equal(plain, unconditional)
        frames = model.denoising_trajectory(3, 4, "ddim", generator=generator(), labels=1, guidance_scale=3.0,
                                            num_frames=5)
        assert frames.shape == (5, 3, 1, 8, 8)
        torch.testing.assert_close(frames[-1], guided, rtol=0, atol=0)
        scheduler = diffusers.DDIMScheduler.from_config({**model.config.scheduler_config(), "clip_sample": False})
        torch.testing.assert_close(model.sample(3, 4, scheduler, generator=generator(), labels=1, guidance_scale=3.0),
                                   guided, rtol=0, atol=0)

    def test_bad_input_is_a_clear_error(self):
        model = self.make_model()
        with pytest.raises(ValueError, match=r"image_size=12 is invalid: must be a positive multiple of 8, the U-Net"):
            self.get_config(image_size=12, block_channels=[4, 8, 8, 8])
        with pytest.raises(ValueError, match="unknown scheduler 'euler': choose one of ddpm, ddim, dpm-solver"):
            model.sample(2, 5, scheduler="euler")
        for steps in (0, -3, 21):
            with pytest.raises(ValueError, match=r"num_inference_steps must be an integer in 1 \.\. 20"):
                model.sample(2, num_inference_steps=steps)
        with pytest.raises(ValueError, match="num_samples must be a positive integer"):
            model.sample(0, 5)
        with pytest.raises(ValueError, match="prediction_type"):
            model.sample(2, 5, scheduler=diffusers.DDIMScheduler(num_train_timesteps=20, prediction_type="sample"))
        with pytest.raises(ValueError, match=r"labels must be class ids in 0 \.\. 2"):
            model.sample(2, 5, labels=[0, 3])
        with pytest.raises(ValueError, match=r"pixel_values must have shape \(batch, 1, 8, 8\)"):
            model(torch.zeros(2, 3, 8, 8))
        with pytest.raises(ValueError, match=r"timesteps must be in 0 \.\. 19"):
            model(torch.zeros(2, 1, 8, 8), timesteps=torch.tensor([0, 20]))
        with pytest.raises(ValueError, match="timesteps must be integers of shape"):
            model(torch.zeros(2, 1, 8, 8), timesteps=torch.tensor([0.5, 1.0]))
        with pytest.raises(ValueError, match="noise must have the shape of pixel_values"):
            model(torch.zeros(2, 1, 8, 8), noise=torch.zeros(2, 1, 4, 4))
        unconditional = DiffusionForImageGeneration(self.get_config(num_classes=0))
        with pytest.raises(ValueError, match="class_labels were given to an unconditional model"):
            unconditional(torch.zeros(2, 1, 8, 8), class_labels=torch.tensor([0, 1]))
        with pytest.raises(ValueError, match="class_labels were given to an unconditional model"):
            unconditional.sample(2, 5, labels=1)


def test_image_processor_maps_pixels_to_minus_one_one():
    processor = DiffusionImageProcessor()
    gray = np.array([[0, 255] * 4] * 8, dtype=np.uint8)
    pixel_values = processor(Image.fromarray(gray, mode="L"), return_tensors="pt")["pixel_values"]
    np.testing.assert_allclose(pixel_values[0, 0].numpy(), gray / 127.5 - 1, atol=1e-6)


QUICK_STEPS = 100  # optimizer steps of the default suite's training (the family's default is 100 epochs, ~1,900)


@pytest.fixture(scope="module")
def quick_diffusion(tmp_path_factory):
    """`hfmodels train --model diffusion` on digits (class-conditioned on the digits), cut to QUICK_STEPS steps at
    batch 128 (~11 epochs)."""
    output_dir = tmp_path_factory.mktemp("runs") / "diffusion-digits"
    results = train(TrainingArguments(model="diffusion", output_dir=str(output_dir), max_steps=QUICK_STEPS,
                                      batch_size=128, report_to="none"))
    return output_dir, results


def test_quick_training_samples_the_requested_digits(quick_diffusion):
    """A short training already makes the digit that is asked for: 50 samples (5 per class, DPM-Solver 10 steps,
    guidance 2), judged by an SVC fitted on the digits' pixels (measured: 100% at 100 steps, 0.92 confidence)."""
    model, _, _ = load_trained(quick_diffusion[0])
    requested = torch.arange(50) % 10
    samples = model.eval().sample(50, 10, "dpm-solver", generator=torch.Generator().manual_seed(0), labels=requested)
    classes, confidence = digits_judge().classify(samples)
    accuracy = (classes == requested.numpy()).mean()
    print(f"quick training: judged class = requested class for {accuracy:.0%}, mean confidence {confidence.mean():.3f}")
    assert accuracy >= 0.8, f"judged class = requested class for {accuracy:.0%}: {classes.tolist()}"


def test_run_folder_has_the_pictures_and_the_ema_model(quick_diffusion):
    output_dir, results = quick_diffusion
    assert results["task"] == "unconditional-image-generation"
    for name in ("samples.png", "denoising.png", "samples_by_epoch.png"):
        with Image.open(output_dir / name) as picture:
            assert picture.format == "PNG" and min(picture.size) > 100
    assert json.loads((output_dir / "training_args.json").read_text())["ema_decay"] is None  # the family's: 0.999
    assert (output_dir / "scheduler_config.json").is_file()


# --- the full measurement (slow): the family's default training, judged as the issue asks -----------------------


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    diffusion = train(TrainingArguments(model="diffusion", output_dir=str(root / "diffusion"), report_to="none"))
    vae = train(TrainingArguments(model="vae", output_dir=str(root / "vae"), report_to="none"))
    return load_trained(diffusion["output_dir"])[0].eval(), load_trained(vae["output_dir"])[0].eval()


@pytest.mark.slow
def test_full_training_samples_like_digits_with_each_sampler(full_runs):
    """200 samples of each sampler against the VAE's 200 on the same judge: unconditional (the "no class" row),
    with the class asked for (classifier-free guidance 2), and with classes drawn uniformly (the marginal of the
    balanced digits); the Frechet distance to the test split beside each."""
    diffusion, vae = full_runs
    judge = digits_judge()
    vae_samples = vae.sample(200, generator=torch.Generator().manual_seed(0))
    vae_classes, vae_confidence = judge.classify(vae_samples)
    report = {"vae": {"classes": len(set(vae_classes)), "confidence": vae_confidence.mean(),
                      "frechet": judge.frechet_distance(vae_samples)}}
    requested = torch.arange(200) % 10
    for name, steps in {"ddpm": 1000, "ddim": 50, "dpm-solver": 20}.items():
        started = time.time()
        samples = diffusion.sample(200, steps, name, generator=torch.Generator().manual_seed(0))
        seconds = time.time() - started
        classes, confidence = judge.classify(samples)
        started = time.time()
        conditional = diffusion.sample(200, steps, name, generator=torch.Generator().manual_seed(0), labels=requested)
        conditional_seconds = time.time() - started
        judged, conditional_confidence = judge.classify(conditional)
        report[f"{name}-{steps}"] = {
            "classes": len(set(classes)), "confidence": confidence.mean(), "frechet": judge.frechet_distance(samples),
            "seconds": seconds, "cfg_accuracy": (judged == requested.numpy()).mean(),
            "cfg_confidence": conditional_confidence.mean(), "cfg_frechet": judge.frechet_distance(conditional),
            "cfg_seconds": conditional_seconds,
        }
    print(json.dumps(report, indent=1, default=float))
    for name, scores in report.items():
        if name == "vae":
            continue
        assert scores["classes"] >= 9, (name, report)
        assert scores["cfg_accuracy"] >= 0.9, (name, report)
    # the full sampler as confident as the VAE; the fast ones measured a little below it (DDIM 50 0.69, DPM-Solver 20
    # 0.70 against 0.72), reported above, not asserted
    assert report["ddpm-1000"]["confidence"] >= report["vae"]["confidence"], report


def test_frechet_distance_of_identical_sets_is_zero_and_grows_with_a_shift():
    rows = np.random.default_rng(0).normal(size=(500, 4))
    assert abs(frechet_distance(rows, rows)) < 1e-6
    assert frechet_distance(rows, rows + 1) == pytest.approx(4, rel=1e-6)


def test_ema_averages_after_each_step_and_is_applied_only_inside_its_block():
    model = torch.nn.Linear(2, 1)
    torch.nn.init.zeros_(model.weight)
    ema = ExponentialMovingAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # warm-up decay min(0.9, 2 / 11)
    expected = 1 - 2 / 11
    torch.testing.assert_close(ema.average["weight"], torch.full((1, 2), expected))
    with ema.applied(model):
        torch.testing.assert_close(model.weight.detach(), torch.full((1, 2), expected))
    torch.testing.assert_close(model.weight.detach(), torch.ones(1, 2))
    restored = ExponentialMovingAverage(torch.nn.Linear(2, 1), decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.steps == 1 and restored.decay == 0.9
    torch.testing.assert_close(restored.average["weight"], ema.average["weight"])
    with pytest.raises(ValueError, match="--ema-decay must be in"):
        TrainingArguments(model="diffusion", ema_decay=1.0)
