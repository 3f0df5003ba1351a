import json

import numpy as np
import pytest
import torch
from PIL import Image

from hfmodels import (
    ImageClassifierConfig,
    ImageClassifierForImageClassification,
    ImageClassifierImageProcessor,
    ImageClassifierModel,
)
from hfmodels.data.digits import digits_pixels
from hfmodels.training.run_folder import read_run

from .model_tester import ModelTesterMixin, run_without_hfmodels


class TestImageClassifier(ModelTesterMixin):
    all_model_classes = (ImageClassifierModel, ImageClassifierForImageClassification)
    config_class = ImageClassifierConfig
    invalid_config_values = [
        ("num_channels", 2),
        ("image_size", 1),
        ("image_size", 4),  # too small for 4 stages, see get_config
        ("hidden_sizes", []),
        ("hidden_sizes", [8, 0, 8, 8]),
        ("depths", [1, 1]),
        ("dropout", 1.0),
        ("num_labels", 0),
    ]

    def get_config(self, **overrides):
        values = {"num_channels": 1, "image_size": 16, "hidden_sizes": [4, 8, 8, 8], "depths": [1, 2, 1, 1],
                  "num_labels": 3}
        return ImageClassifierConfig(**{**values, **overrides})

    def get_inputs(self, batch_size=3, seed=0):
        generator = torch.Generator().manual_seed(seed)
        return {
            "pixel_values": torch.randn(batch_size, 1, 16, 16, generator=generator),
            "labels": torch.randint(0, 3, (batch_size,), generator=generator),
        }

    def test_base_model_returns_pooled_features(self):
        model = ImageClassifierModel(self.get_config()).eval()
        outputs = model(self.get_inputs()["pixel_values"], output_hidden_states=True)
        assert outputs.pooler_output.shape == (3, 8)
        assert outputs.last_hidden_state.shape == (3, 8, 2, 2)
        assert len(outputs.hidden_states) == 5  # stem + 4 stages

    def test_label_outside_num_labels_is_a_clear_error(self):
        inputs = self.get_inputs()
        inputs["labels"][0] = 3
        with pytest.raises(ValueError, match=r"labels must be class ids in 0 .. 2 \(config.num_labels=3\), got \[3\]"):
            self.make_model()(**inputs)

    def test_problem_type_picks_the_loss(self):
        """As transformers' classification heads: regression (MSE) for one label, multi-label (binary cross-entropy
        per label) for float targets; class weights only where classes are single labels."""
        pixel_values = self.get_inputs()["pixel_values"]
        torch.manual_seed(0)
        regression = ImageClassifierForImageClassification(self.get_config(num_labels=1)).eval()
        targets = torch.tensor([0.5, -1.0, 2.0])
        outputs = regression(pixel_values, labels=targets)
        torch.testing.assert_close(outputs.loss, torch.nn.functional.mse_loss(outputs.logits.squeeze(-1), targets))
        assert regression.config.problem_type == "regression"
        multi = self.make_model()
        targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
        outputs = multi(pixel_values, labels=targets)
        torch.testing.assert_close(
            outputs.loss, torch.nn.functional.binary_cross_entropy_with_logits(outputs.logits, targets)
        )
        assert multi.config.problem_type == "multi_label_classification"
        with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
            multi(pixel_values, labels=targets[:, :2])
        with pytest.raises(ValueError, match="class_weights"):
            self.get_config(problem_type="regression", class_weights=[1.0, 2.0, 1.0])
        with pytest.raises(ValueError, match=r"problem_type='ranking' is invalid: must be None or one of"):
            self.get_config(problem_type="ranking")

    def test_wrong_channel_count_is_a_clear_error(self):
        with pytest.raises(ValueError, match="num_channels=1"):
            self.make_model()(pixel_values=torch.randn(2, 3, 16, 16))


class TestImageProcessor:
    def test_grayscale_rgb_rgba_numpy_and_torch_inputs_agree(self):
        processor = ImageClassifierImageProcessor(num_channels=1, size={"height": 8, "width": 8})
        gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
        pil_gray = Image.fromarray(gray, mode="L")
        variants = [
            pil_gray,
            pil_gray.convert("RGB"),
            pil_gray.convert("RGBA"),
            gray,
            np.stack([gray] * 3, axis=-1),
            torch.from_numpy(gray)[None],
        ]
        outputs = [processor(image, return_tensors="pt")["pixel_values"] for image in variants]
        for output in outputs:
            assert output.shape == (1, 1, 8, 8)
            torch.testing.assert_close(output, outputs[0])
        expected = (gray.astype(np.float32) / 255 - 0.5) / 0.5
        np.testing.assert_allclose(outputs[0][0, 0].numpy(), expected, atol=1e-6)

    def test_batches_resize_and_three_channel_output(self):
        processor = ImageClassifierImageProcessor(
            num_channels=3, size={"height": 16, "width": 16}, image_mean=[0.5] * 3, image_std=[0.5] * 3
        )
        images = [Image.new("L", (8, 8), 128), Image.new("RGB", (32, 20), (10, 20, 30))]
        assert processor(images, return_tensors="pt")["pixel_values"].shape == (2, 3, 16, 16)

    def test_image_with_unconvertible_channels_is_a_clear_error(self):
        processor = ImageClassifierImageProcessor(num_channels=1)
        with pytest.raises(ValueError, match="channels"):
            processor(np.zeros((8, 8, 2), dtype=np.uint8), return_tensors="pt")

    def test_save_and_load(self, tmp_path):
        processor = ImageClassifierImageProcessor(num_channels=3, size={"height": 12, "width": 12})
        processor.save_pretrained(tmp_path)
        reloaded = ImageClassifierImageProcessor.from_pretrained(tmp_path)
        assert reloaded.num_channels == 3 and reloaded.size.height == 12


def test_digits_classifier_beats_the_accuracy_threshold(trained_digits_classifier):
    """The default run, `hfmodels train`, on the fixed digits split (SVC reference: 0.9933)."""
    results = json.loads((trained_digits_classifier / "eval_results.json").read_text())
    assert results["dataset"] == {"name": "digits", "config": None, "revision": None, "split": "test",
                                  "sizes": {"train": 1212, "validation": 135, "test": 450}, "synthetic": False}
    assert results["medical"] is False
    assert results["metrics"]["num_samples"] == 450
    assert results["metrics"]["accuracy"] >= 0.99


def test_saved_classifier_runs_without_hfmodels(trained_digits_classifier, tmp_path):
    """AutoModel/AutoImageProcessor with remote code and the pipeline, in a process that cannot import hfmodels."""
    # the code beside the weights is the run's to push: with the files the family's files import
    code_files = read_run(trained_digits_classifier).code_files()
    for name in ("modeling_image_classifier.py", "loading.py", "validation.py", "image_processing_image_classifier.py",
                 "image_processing_base.py"):
        assert name in code_files and not (trained_digits_classifier / name).is_symlink(), (name, code_files)
    images, labels = digits_pixels()
    sample = list(range(0, 1797, 97))  # a spread of digits images
    np.save(tmp_path / "images.npy", images[sample])
    run_without_hfmodels(
        f"""
        import json, numpy as np, torch, transformers
        from PIL import Image
        path = {str(trained_digits_classifier)!r}
        model = transformers.AutoModelForImageClassification.from_pretrained(path, trust_remote_code=True).eval()
        processor = transformers.AutoImageProcessor.from_pretrained(path, trust_remote_code=True)
        images = [Image.fromarray(x, mode="L") for x in np.load("images.npy")]
        with torch.no_grad():
            logits = model(**processor(images, return_tensors="pt")).logits
        torch.save(logits, "logits.pt")
        classify = transformers.pipeline("image-classification", model=path, trust_remote_code=True)
        json.dump([result[0]["label"] for result in classify(images)], open("pipeline.json", "w"))
        """,
        cwd=tmp_path,
    )
    model = ImageClassifierForImageClassification.from_pretrained(trained_digits_classifier).eval()
    processor = ImageClassifierImageProcessor.from_pretrained(trained_digits_classifier)
    pil_images = [Image.fromarray(x, mode="L") for x in images[sample]]
    with torch.no_grad():
        logits = model(**processor(pil_images, return_tensors="pt")).logits
    torch.testing.assert_close(torch.load(tmp_path / "logits.pt"), logits, rtol=0, atol=0)
    pipeline_labels = json.loads((tmp_path / "pipeline.json").read_text())
    assert pipeline_labels == [model.config.id2label[i] for i in logits.argmax(-1).tolist()]
    assert sum(label == str(y) for label, y in zip(pipeline_labels, labels[sample])) >= len(sample) - 1
