import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from hfmodels import VAEConfig, VAEImageProcessor, VAEModel
from hfmodels.hub import check_card, write_card
from hfmodels.training import TrainingArguments, train
from hfmodels.training.evaluation import load_trained

from .model_tester import ModelTesterMixin, run_without_hfmodels


class TestVAE(ModelTesterMixin):
    all_model_classes = (VAEModel,)  # its outputs in eval mode are decoded from the latent means: deterministic
    config_class = VAEConfig
    invalid_config_values = [
        ("num_channels", 2),
        ("image_size", 6),  # not a multiple of 4, for 2 stages
        ("hidden_sizes", []),
        ("latent_dim", 0),
        ("latent_dim", -1),
        ("beta", -0.5),
        ("beta", float("nan")),
    ]

    def get_config(self, **overrides):
        values = {"num_channels": 1, "image_size": 8, "hidden_sizes": [4, 8], "latent_dim": 3}
        return VAEConfig(**{**values, **overrides})

    def get_inputs(self, batch_size=3, seed=0):
        pixel_values = torch.rand(batch_size, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
        return {"pixel_values": pixel_values, "labels": pixel_values.clone()}

    def test_loss_is_reconstruction_plus_beta_times_kl(self):
        """Checked against torch.distributions: a Bernoulli per pixel (its log-likelihood extended to grey
        targets in [0, 1], hence no argument validation) and KL(N(mean, var) || N(0, 1))."""
        torch.manual_seed(0)
        model = VAEModel(self.get_config(beta=0.5)).eval()
        inputs = self.get_inputs()
        outputs = model(**inputs)
        bernoulli = torch.distributions.Bernoulli(probs=outputs.reconstruction, validate_args=False)
        expected_reconstruction = -bernoulli.log_prob(inputs["labels"]).flatten(1).sum(1).mean()
        posterior = torch.distributions.Normal(outputs.latent_mean, torch.exp(0.5 * outputs.latent_log_var))
        prior = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
        expected_kl = torch.distributions.kl_divergence(posterior, prior).sum(1).mean()
        torch.testing.assert_close(outputs.reconstruction_loss, expected_reconstruction, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(outputs.kl_loss, expected_kl)
        torch.testing.assert_close(outputs.loss, expected_reconstruction + 0.5 * expected_kl, rtol=1e-5, atol=1e-5)

    def test_training_mode_samples_the_latents_and_eval_mode_uses_the_mean(self):
        model = self.make_model()
        pixel_values = self.get_inputs()["pixel_values"]
        evaluated = model(pixel_values)
        torch.testing.assert_close(evaluated.latents, evaluated.latent_mean)
        model.train()
        first, second = model(pixel_values).latents, model(pixel_values).latents
        assert not torch.equal(first, second) and not torch.equal(first, evaluated.latent_mean)

    def test_same_seed_gives_identical_samples(self):
        model = self.make_model()
        first = model.sample(6, generator=torch.Generator().manual_seed(3))
        second = model.sample(6, generator=torch.Generator().manual_seed(3))
        other = model.sample(6, generator=torch.Generator().manual_seed(4))
        assert first.shape == (6, 1, 8, 8) and 0 <= first.min() and first.max() <= 1
        torch.testing.assert_close(first, second, rtol=0, atol=0)
        assert not torch.equal(first, other)

    def test_saved_and_reloaded_vae_samples_the_same_images(self, tmp_path):
        model = self.make_model()
        model.save_pretrained(tmp_path / "model")
        expected = model.sample(5, generator=torch.Generator().manual_seed(7))
        reloaded = VAEModel.from_pretrained(tmp_path / "model").eval()
        samples = reloaded.sample(5, generator=torch.Generator().manual_seed(7))
        torch.testing.assert_close(samples, expected, rtol=0, atol=0)
        run_without_hfmodels(
            """
            import torch, transformers
            model = transformers.AutoModel.from_pretrained("model", trust_remote_code=True).eval()
            torch.save(model.sample(5, generator=torch.Generator().manual_seed(7)), "samples.pt")
            """,
            cwd=tmp_path,
        )
        torch.testing.assert_close(torch.load(tmp_path / "samples.pt"), expected, rtol=0, atol=0)

    def test_interpolation_runs_between_the_latent_means(self):
        model = self.make_model()
        a, b = self.get_inputs(batch_size=2)["pixel_values"]
        strip = model.interpolate(a, b, steps=4)
        assert strip.shape == (4, 1, 8, 8)
        torch.testing.assert_close(strip[[0, -1]], model(torch.stack([a, b])).reconstruction)

    def test_bad_input_is_a_clear_error(self):
        model = self.make_model()
        with pytest.raises(ValueError, match=r"latents must have shape \(batch, 3\) \(config.latent_dim\), got \(2, 5"):
            model.decode(torch.zeros(2, 5))
        with pytest.raises(ValueError, match="num_samples must be a positive integer"):
            model.sample(0)
        with pytest.raises(ValueError, match=r"pixels in \[0, 1\]"):
            model(torch.rand(2, 1, 8, 8), labels=torch.rand(2, 1, 8, 8) * 2)
        with pytest.raises(ValueError, match="labels are the target images"):
            model(torch.rand(2, 1, 8, 8), labels=torch.rand(2, 1, 4, 4))


def test_image_processor_rescales_to_zero_one_without_normalising():
    """The range the decoder's sigmoid produces, as the autoencoder's processor gives it."""
    processor = VAEImageProcessor()
    assert processor.do_normalize is False and processor.num_channels == 1
    gray = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).astype(np.uint8)
    for image in (Image.fromarray(gray, mode="L"), Image.fromarray(gray, mode="L").convert("RGB")):
        pixel_values = processor(image, return_tensors="pt")["pixel_values"]
        np.testing.assert_allclose(pixel_values[0, 0].numpy(), gray / 255, atol=1e-6)


@pytest.fixture(scope="module")
def trained_vae(tmp_path_factory):
    """`hfmodels train --model vae` with the family's defaults on digits."""
    output_dir = tmp_path_factory.mktemp("runs") / "vae-digits"
    results = train(TrainingArguments(model="vae", output_dir=str(output_dir)))
    return output_dir, results


def test_vae_samples_are_digits(trained_vae, trained_digits_classifier):
    """The package's digits classifier recognises 200 samples from the prior: confident, and most classes appear."""
    output_dir, results = trained_vae
    vae, _, _ = load_trained(output_dir)
    classifier, processor, _ = load_trained(trained_digits_classifier)
    samples = vae.eval().sample(200, generator=torch.Generator().manual_seed(0))  # (200, 1, 8, 8) in [0, 1]
    images = [Image.fromarray(np.rint(sample[0].numpy() * 255).astype(np.uint8), mode="L") for sample in samples]
    with torch.no_grad():
        probabilities = classifier.eval()(**processor(images, return_tensors="pt")).logits.softmax(-1)
    confidence, classes = probabilities.max(-1)
    assert confidence.mean() >= 0.8, f"mean top-class probability {confidence.mean():.3f}"
    assert len(classes.unique()) >= 8, f"classes among the samples: {np.bincount(classes.numpy(), minlength=10)}"


def test_run_folder_has_the_pictures(trained_vae):
    output_dir, results = trained_vae
    assert results["task"] == "unconditional-image-generation" and "pca-8" in results["baselines"]
    for name in ("reconstructions.png", "interpolation.png", "latent_map.png", "samples.png"):
        with Image.open(output_dir / name) as picture:
            assert picture.format == "PNG" and min(picture.size) > 100


def test_card_shows_how_to_sample(trained_vae, tmp_path):
    output_dir, _ = trained_vae
    run = shutil.copytree(output_dir, tmp_path / "run")
    text = write_card(run, "someone/vae").read_text()
    assert "images = model.sample(16, generator=torch.Generator().manual_seed(0))" in text
    assert "# (16, 1, 8, 8): decoded from latents drawn from the prior" in text and check_card(run) == []
