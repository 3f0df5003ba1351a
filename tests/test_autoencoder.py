import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

from hfmodels import AutoencoderConfig, AutoencoderImageProcessor, AutoencoderModel
from hfmodels.data import load_source, with_validation_split
from hfmodels.families.autoencoder import AutoencoderFamily
from hfmodels.metrics import load_metric
from hfmodels.training import TrainingArguments, train
from hfmodels.training.evaluation import evaluate_saved

from .model_tester import ModelTesterMixin

# PCA fitted on the training rows of the fixed digits split, test MSE (pixels in [0, 1]).
PCA_8_TEST_MSE = 0.0246
PCA_16_TEST_MSE = 0.0115


class TestAutoencoder(ModelTesterMixin):
    all_model_classes = (AutoencoderModel,)
    config_class = AutoencoderConfig
    invalid_config_values = [
        ("num_channels", 2),
        ("image_size", 0),
        ("image_size", 6),  # not a multiple of 4, for 2 stages
        ("hidden_sizes", []),
        ("hidden_sizes", [4, 0]),
        ("latent_dim", 0),
        ("latent_dim", -3),
    ]

    def get_config(self, **overrides):
        values = {"num_channels": 1, "image_size": 8, "hidden_sizes": [4, 8], "latent_dim": 3}
        return AutoencoderConfig(**{**values, **overrides})

    def get_inputs(self, batch_size=3, seed=0):
        pixel_values = torch.rand(batch_size, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
        return {"pixel_values": pixel_values, "labels": pixel_values.clone()}

    def test_encode_decode_and_forward_agree(self):
        model = self.make_model()
        pixel_values = self.get_inputs()["pixel_values"]
        outputs = model(pixel_values)
        assert outputs.latents.shape == (3, 3) and outputs.reconstruction.shape == (3, 1, 8, 8)
        torch.testing.assert_close(outputs.latents, model.encode(pixel_values))
        torch.testing.assert_close(outputs.reconstruction, model.decode(outputs.latents))
        assert 0 <= outputs.reconstruction.min() and outputs.reconstruction.max() <= 1

    def test_loss_is_the_mean_squared_error_to_the_labels(self):
        model = self.make_model()
        inputs = self.get_inputs()
        outputs = model(**inputs)
        torch.testing.assert_close(outputs.loss, ((outputs.reconstruction - inputs["labels"]) ** 2).mean())
        loss, latents, reconstruction = model(**inputs, return_dict=False)
        torch.testing.assert_close(loss, outputs.loss)

    def test_bad_shapes_are_clear_errors(self):
        model = self.make_model()
        with pytest.raises(ValueError, match=r"latents must have shape \(batch, 3\)"):
            model.decode(torch.zeros(2, 4))
        with pytest.raises(ValueError, match=r"pixel_values must have shape \(batch, 1, 8, 8\)"):
            model(torch.rand(2, 1, 16, 16))
        with pytest.raises(ValueError, match="labels are the target images"):
            model(torch.rand(2, 1, 8, 8), labels=torch.tensor([0, 1]))

    def test_interpolation_runs_from_one_image_to_the_other(self):
        model = self.make_model()
        a, b = self.get_inputs(batch_size=2)["pixel_values"]
        strip = model.interpolate(a, b, steps=5)
        assert strip.shape == (5, 1, 8, 8)
        torch.testing.assert_close(strip[[0, -1]], model(torch.stack([a, b])).reconstruction)
        with pytest.raises(ValueError, match="steps must be >= 2"):
            model.interpolate(a, b, steps=1)


class TestImageProcessor:
    def test_pixels_are_in_zero_one_and_channels_are_converted(self):
        processor = AutoencoderImageProcessor(num_channels=1, size={"height": 8, "width": 8})
        gray = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).astype(np.uint8)
        for image in (Image.fromarray(gray, mode="L"), Image.fromarray(gray, mode="L").convert("RGB")):
            pixel_values = processor(image, return_tensors="pt")["pixel_values"]
            np.testing.assert_allclose(pixel_values[0, 0].numpy(), gray / 255, atol=1e-6)


class TestImageMetrics:
    def images(self, seed=0):
        rng = np.random.default_rng(seed)
        references = rng.random((4, 1, 8, 8), dtype=np.float32)
        return np.clip(references + 0.1 * rng.standard_normal(references.shape), 0, 1).astype(np.float32), references

    def test_mse_and_psnr_of_a_constant_error(self):
        references = np.full((2, 1, 8, 8), 0.5, dtype=np.float32)
        predictions = references + np.float32(0.1)
        inputs = {"predictions": predictions, "references": references}
        assert load_metric("mse").compute(**inputs)["mse"] == pytest.approx(0.01)
        assert load_metric("psnr").compute(**inputs)["psnr"] == pytest.approx(20.0)
        in_255 = {"predictions": predictions * 255, "references": references * 255}
        psnr_255 = load_metric("psnr").compute(**in_255, data_range=255)
        assert psnr_255["psnr"] == pytest.approx(20.0, abs=1e-4)

    def test_identical_images_score_perfectly(self):
        _, references = self.images()
        assert load_metric("mse").compute(predictions=references, references=references)["mse"] == 0
        assert load_metric("psnr").compute(predictions=references, references=references)["psnr"] == float("inf")
        assert load_metric("ssim").compute(predictions=references, references=references)["ssim"] == pytest.approx(1.0)

    def test_ssim_of_one_window_matches_the_formula(self):
        """7x7 images have exactly one 7x7 window: SSIM is Wang et al.'s formula on the whole image."""
        rng = np.random.default_rng(1)
        x, y = rng.random((7, 7)), rng.random((7, 7))
        c1, c2 = 0.01**2, 0.03**2
        covariance = np.cov(x.ravel(), y.ravel())  # sample (co)variances, ddof=1
        expected = ((2 * x.mean() * y.mean() + c1) * (2 * covariance[0, 1] + c2)) / (
            (x.mean() ** 2 + y.mean() ** 2 + c1) * (covariance[0, 0] + covariance[1, 1] + c2)
        )
        result = load_metric("ssim").compute(predictions=x[None, None], references=y[None, None])
        assert result["ssim"] == pytest.approx(expected, rel=1e-5)

    def test_ssim_is_symmetric_and_falls_with_noise(self):
        predictions, references = self.images()
        ssim = load_metric("ssim")
        forward = ssim.compute(predictions=predictions, references=references)["ssim"]
        assert forward == pytest.approx(ssim.compute(predictions=references, references=predictions)["ssim"])
        noisier = np.clip(references + 0.3 * np.random.default_rng(2).standard_normal(references.shape), 0, 1)
        assert ssim.compute(predictions=noisier, references=references)["ssim"] < forward < 1

    def test_bad_inputs_are_clear_errors(self):
        predictions, references = self.images()
        with pytest.raises(ValueError, match="win_size=9"):
            load_metric("ssim").compute(predictions=predictions, references=references, win_size=9)
        with pytest.raises(ValueError, match="differ in shape"):
            load_metric("mse").compute(predictions=predictions[:, :, :4], references=references[:, :, :4, :2])


def test_pca_baseline_has_the_models_latent_size():
    data = with_validation_split(load_source("digits"), seed=0)
    baselines = AutoencoderFamily().baselines(data, "test", config=AutoencoderConfig(latent_dim=16))
    assert list(baselines) == ["pca-16"]
    assert baselines["pca-16"]["mse"] == pytest.approx(PCA_16_TEST_MSE, abs=5e-5)


@pytest.fixture(scope="module")
def trained_autoencoder(tmp_path_factory):
    """`hfmodels train --model autoencoder` with the family's defaults (latent_dim=8) on digits."""
    output_dir = tmp_path_factory.mktemp("runs") / "autoencoder-digits"
    results = train(TrainingArguments(model="autoencoder", output_dir=str(output_dir)))
    return output_dir, results


def test_autoencoder_beats_pca_at_the_same_latent_size(trained_autoencoder):
    _, results = trained_autoencoder
    assert results["dataset"]["split"] == "test" and results["metrics"]["num_samples"] == 450
    assert results["baselines"]["pca-8"]["mse"] == pytest.approx(PCA_8_TEST_MSE, abs=5e-5)
    assert results["metrics"]["mse"] < results["baselines"]["pca-8"]["mse"]
    assert results["metrics"]["ssim"] > results["baselines"]["pca-8"]["ssim"]


def test_evaluate_reports_the_pca_baseline_beside_the_model(trained_autoencoder):
    output_dir, results = trained_autoencoder
    report = evaluate_saved(output_dir)
    assert report["metrics"]["mse"] == pytest.approx(results["metrics"]["mse"])
    assert report["baselines"] == results["baselines"]


def test_feature_extraction_pipeline_returns_the_latents(trained_autoencoder):
    output_dir, _ = trained_autoencoder
    images = [Image.fromarray(np.full((8, 8), value, dtype=np.uint8), mode="L") for value in (0, 128)]
    features = pipeline("image-feature-extraction", model=str(output_dir))(images, return_tensors=True)
    model = AutoencoderModel.from_pretrained(output_dir).eval()
    processor = AutoencoderImageProcessor.from_pretrained(output_dir)
    with torch.no_grad():
        latents = model.encode(processor(images, return_tensors="pt")["pixel_values"])
    torch.testing.assert_close(torch.cat(features), latents)


def test_run_folder_has_the_pictures(trained_autoencoder):
    output_dir, _ = trained_autoencoder
    for name in ("reconstructions.png", "interpolation.png", "latent_map.png"):
        with Image.open(output_dir / name) as picture:
            assert picture.format == "PNG" and min(picture.size) > 100
