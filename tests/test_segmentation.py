import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

from hfmodels import UNetConfig, UNetForSemanticSegmentation, UNetImageProcessor, UNetModel
from hfmodels.data import load_source
from hfmodels.data.segmentation import load_mask_folder
from hfmodels.data.shapes import SHAPE_CLASSES, generate_shapes
from hfmodels.families.segmentation import SegmentationFamily, augment
from hfmodels.metrics import load_metric
from hfmodels.training import TrainingArguments, train
from hfmodels.training.evaluation import evaluate_saved

from .conftest import run_cli
from .model_tester import ModelTesterMixin, run_without_hfmodels


class TestUNet(ModelTesterMixin):
    all_model_classes = (UNetModel, UNetForSemanticSegmentation)
    config_class = UNetConfig
    invalid_config_values = [
        ("num_channels", 2),
        ("depth", 0),
        ("image_size", 4),  # smaller than 2 ** depth = 8, see get_config
        ("base_channels", 0),
        ("channel_multiplier", 0),
        ("norm", "layer"),
        ("num_labels", 1),
        ("semantic_loss_ignore_index", 2),  # a class id
        ("class_weights", [1.0, 2.0]),  # not one per class
        ("class_weights", [1.0, 0.0, 1.0]),
    ]

    def get_config(self, **overrides):
        values = {"num_channels": 1, "image_size": 16, "depth": 3, "base_channels": 4, "num_labels": 3}
        return UNetConfig(**{**values, **overrides})

    def get_inputs(self, batch_size=3, seed=0):
        generator = torch.Generator().manual_seed(seed)
        return {
            "pixel_values": torch.randn(batch_size, 1, 16, 16, generator=generator),
            "labels": torch.randint(0, 3, (batch_size, 16, 16), generator=generator),
        }

    def test_logits_have_the_inputs_resolution_also_for_odd_sizes(self):
        model = self.make_model()
        for height, width in ((16, 16), (19, 13)):
            outputs = model(torch.randn(2, 1, height, width), output_hidden_states=True)
            assert outputs.logits.shape == (2, 3, height, width)
            assert len(outputs.hidden_states) == 7  # 4 encoder levels + 3 decoder levels
        features = UNetModel(self.get_config()).eval()(torch.randn(2, 1, 16, 16)).last_hidden_state
        assert features.shape == (2, 4, 16, 16)

    def test_every_norm_trains(self):
        for norm in ("group", "none"):
            torch.manual_seed(0)
            model = self.model_class(self.get_config(norm=norm, channel_multiplier=3))
            model(**self.get_inputs()).loss.backward()
            assert all(p.grad is not None for p in model.parameters())

    def test_loss_skips_ignored_pixels_and_weighs_classes(self):
        model = self.make_model()
        inputs = self.get_inputs()
        logits = model(inputs["pixel_values"]).logits
        labels = inputs["labels"].clone()
        labels[:, :8] = 255
        expected = torch.nn.functional.cross_entropy(logits[:, :, 8:], inputs["labels"][:, 8:])
        torch.testing.assert_close(model(inputs["pixel_values"], labels=labels).loss, expected)
        assert model(inputs["pixel_values"], labels=torch.full_like(labels, 255)).loss == 0

        torch.manual_seed(0)
        weighted = self.model_class(self.get_config(class_weights=[1.0, 2.0, 0.5])).eval()
        weight = torch.tensor([1.0, 2.0, 0.5])
        expected = torch.nn.functional.cross_entropy(logits, inputs["labels"], weight=weight)
        torch.testing.assert_close(weighted(**inputs).loss, expected)

    def test_bad_labels_are_clear_errors(self):
        model = self.make_model()
        inputs = self.get_inputs()
        inputs["labels"][0, 0, 0] = 3
        with pytest.raises(ValueError, match=r"class ids in 0 .. 2 \(config.num_labels=3\) or 255 .*, got \[3\]"):
            model(**inputs)
        with pytest.raises(ValueError, match=r"labels must be masks of shape \(batch, height, width\)"):
            model(inputs["pixel_values"], labels=inputs["labels"][:, :8])
        with pytest.raises(ValueError, match="num_channels=1"):
            model(torch.randn(2, 3, 16, 16))
        with pytest.raises(ValueError, match=">= 8"):
            model(torch.randn(2, 1, 4, 16))


class TestImageProcessor:
    def test_images_and_masks_are_resized_together_masks_nearest(self):
        processor = UNetImageProcessor(num_channels=1, size={"height": 8, "width": 8}, image_mean=[0.5],
                                       image_std=[0.5])
        # 4x4 blocks of class ids: nearest-neighbour halving keeps them exactly
        mask = np.kron(np.array([[0, 1, 2, 3]] * 4), np.ones((4, 4), dtype=np.int64)).astype(np.uint8)
        image = Image.fromarray(mask * 60, mode="L")
        outputs = processor([image, image], segmentation_maps=[Image.fromarray(mask), mask], return_tensors="pt")
        assert outputs["pixel_values"].shape == (2, 1, 8, 8) and outputs["labels"].shape == (2, 8, 8)
        assert outputs["labels"].dtype == torch.int64
        np.testing.assert_array_equal(outputs["labels"][0].numpy(), mask[::2, ::2])
        torch.testing.assert_close(outputs["labels"][0], outputs["labels"][1])
        # the image's bright stripes sit where the mask's high class ids are
        assert (outputs["pixel_values"][0, 0, :, 6:] > outputs["pixel_values"][0, 0, :, :2]).all()

    def test_bad_masks_are_clear_errors(self):
        processor = UNetImageProcessor(size={"height": 8, "width": 8})
        image = Image.new("RGB", (10, 10))
        with pytest.raises(ValueError, match=r"Segmentation map 0 has size .*\(12, 10\).*\(10, 10\)"):
            processor(image, segmentation_maps=np.zeros((12, 10), dtype=np.uint8))
        with pytest.raises(ValueError, match="single-channel"):
            processor(image, segmentation_maps=Image.new("RGB", (10, 10)))
        with pytest.raises(ValueError, match="one mask per image"):
            processor([image, image], segmentation_maps=[np.zeros((10, 10), dtype=np.uint8)])

    def test_post_processing_resizes_logits_to_the_target_sizes(self):
        logits = torch.zeros(1, 3, 4, 4)
        logits[0, 2, :, 2:] = 1  # class 2 on the right half, class 0 elsewhere
        masks = UNetImageProcessor().post_process_semantic_segmentation(
            type("Outputs", (), {"logits": logits}), target_sizes=[(6, 10)]
        )
        assert masks[0].shape == (6, 10)
        assert (masks[0][:, :4] == 0).all() and (masks[0][:, 6:] == 2).all()  # bilinear: the middle blends


class TestMeanIoU:
    def test_hand_computed_scores(self):
        predictions = np.array([[[0, 1], [1, 1]], [[2, 2], [0, 0]]])
        references = np.array([[[0, 1], [255, 0]], [[2, 1], [0, 0]]])
        result = load_metric("mean_iou").compute(
            predictions=predictions, references=references, num_labels=3, label_names=["bg", "a", "b"]
        )
        # labelled pixels: bg 4 (3 right, 1 predicted a), a 2 (1 right, 1 predicted b), b 1 (right)
        # IoU: bg 3/4, a 1/3 (1 right; predicted a 2x, true a 2x), b 1/2
        assert result["iou_bg"] == pytest.approx(3 / 4)
        assert result["iou_a"] == pytest.approx(1 / 3)
        assert result["iou_b"] == pytest.approx(1 / 2)
        assert result["mean_iou"] == pytest.approx((3 / 4 + 1 / 3 + 1 / 2) / 3)
        assert result["pixel_accuracy"] == pytest.approx(5 / 7)

    def test_classes_that_never_occur_are_left_out_of_the_mean(self):
        masks = np.array([[[0, 1], [1, 0]]])
        result = load_metric("mean_iou").compute(predictions=masks, references=masks, num_labels=5)
        assert result == {"mean_iou": 1.0, "pixel_accuracy": 1.0, "iou_0": 1.0, "iou_1": 1.0}

    def test_bad_inputs_are_clear_errors(self):
        masks = np.zeros((1, 2, 2), dtype=np.int64)
        with pytest.raises(ValueError, match="num_labels"):
            load_metric("mean_iou").compute(predictions=masks, references=masks)
        with pytest.raises(ValueError, match=r"predictions must be class ids in \[0, 2\)"):
            load_metric("mean_iou").compute(predictions=masks + 2, references=masks, num_labels=2)
        with pytest.raises(ValueError, match="every reference pixel is ignore_index"):
            load_metric("mean_iou").compute(predictions=masks, references=masks + 255, num_labels=2)


class TestData:
    def test_shapes_are_fixed_and_masks_match_their_images(self):
        first, again = generate_shapes(3, seed=7), generate_shapes(3, seed=7)
        for a, b in zip(first, again):
            assert np.array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
            assert np.array_equal(np.asarray(a["mask"]), np.asarray(b["mask"]))
        masks = np.stack([np.asarray(row["mask"]) for row in generate_shapes(40, seed=3)])
        assert masks.shape == (40, 64, 64) and set(np.unique(masks)) == {0, 1, 2, 3}
        assert first[0]["image"].mode == "RGB" and first[0]["image"].size == (64, 64)

    def test_shapes_of_any_colour_keep_the_masks_and_shape_names_name_the_one_shape(self):
        import colorsys

        shapes, any_colour = generate_shapes(20, seed=3), generate_shapes(20, seed=3, any_colour=True)
        hues = {kind: set() for kind in (1, 2, 3)}
        for plain, coloured in zip(shapes, any_colour):
            mask = np.asarray(plain["mask"])
            assert np.array_equal(mask, np.asarray(coloured["mask"]))  # the same shapes, other colours
            pixels = np.asarray(coloured["image"], dtype=np.float32) / 255
            for kind in hues:
                if (mask == kind).sum() > 30:
                    red, green, blue = np.median(pixels[mask == kind], axis=0)
                    hues[kind].add(round(colorsys.rgb_to_hsv(red, green, blue)[0], 1))
        assert all(len(found) >= 4 for found in hues.values()), hues  # every kind in many hues: no colour crutch
        names = load_source("shape-names")
        assert names["train"].features["label"].names == ["circle", "square", "triangle"]
        assert {split: len(rows) for split, rows in names.items()} == {"train": 2000, "test": 500}

    def test_augmentation_moves_image_and_mask_together(self):
        import random

        row = generate_shapes(1, seed=5)[0]
        random.seed(1)
        image, mask = augment(row["image"], row["mask"])
        ids, moved = np.asarray(row["mask"]), np.asarray(mask)
        # find the shift: the original mask, flipped and shifted, must reproduce the labelled pixels
        matches = [
            (flip_x, flip_y, dx, dy)
            for flip_x in (False, True) for flip_y in (False, True) for dx in range(-4, 5) for dy in range(-4, 5)
            if np.array_equal(shifted(ids, flip_x, flip_y, dx, dy)[moved != 255], moved[moved != 255])
        ]
        assert len(matches) == 1
        # the image underwent the same transform (compared where the mask is labelled)
        expected = shifted(np.asarray(row["image"]), *matches[0])
        assert np.array_equal(np.asarray(image)[moved != 255], expected[moved != 255])

    def test_mask_folder_with_splits_and_class_names(self, tmp_path):
        write_pairs(tmp_path / "train", {"a": 2, "b": 1})
        write_pairs(tmp_path / "test", {"c": 2})
        (tmp_path / "id2label.json").write_text(json.dumps({"0": "background", "1": "cat", "2": "dog"}))
        data = load_source(str(tmp_path))
        assert {split: len(rows) for split, rows in data.items()} == {"test": 1, "train": 2}
        config = SegmentationFamily().build_config(data["train"], {})
        assert config.id2label == {0: "background", 1: "cat", 2: "dog"} and config.num_channels == 3

    def test_bad_mask_folders_are_errors_naming_the_file(self, tmp_path):
        root = tmp_path / "sizes"
        write_pairs(root, {"a": 1, "b": 1})
        Image.new("L", (5, 8)).save(root / "masks" / "b.png")
        with pytest.raises(ValueError, match=r"Mask .*masks/b\.png is 5x8 pixels, its image .*images/b\.png 8x8"):
            load_source(str(root))

        root = tmp_path / "values"
        write_pairs(root, {"a": 1, "b": 4})
        (root / "id2label.json").write_text(json.dumps({"0": "background", "1": "cat", "2": "dog"}))
        with pytest.raises(ValueError, match=r"Mask .*masks/b\.png has class id 4.*names 3 classes"):
            load_mask_folder(root)
        (root / "id2label.json").unlink()  # without names: ids must be 0..n-1, 2 and 3 are missing
        with pytest.raises(ValueError, match=r"Mask .*masks/b\.png has class id 4, but ids \[2, 3\] occur in no mask"):
            load_mask_folder(root)

        root = tmp_path / "unmatched"
        write_pairs(root, {"a": 1, "b": 1})
        (root / "masks" / "b.png").unlink()
        with pytest.raises(ValueError, match=r"Image .*images/b\.png has no mask"):
            load_source(str(root))

        root = tmp_path / "rgb"
        write_pairs(root, {"a": 1})
        Image.new("RGB", (8, 8)).save(root / "masks" / "a.png")
        with pytest.raises(ValueError, match=r"Mask .*masks/a\.png has PIL mode 'RGB'"):
            load_source(str(root))


def shifted(array: np.ndarray, flip_x: bool, flip_y: bool, dx: int, dy: int) -> np.ndarray:
    """What `augment` does to an image: flips, then output pixel (x, y) = input (x + dx, y + dy), 0 outside."""
    array = array[:, ::-1] if flip_x else array
    array = array[::-1] if flip_y else array
    out = np.zeros_like(array)
    height, width = array.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width]
    inside = (0 <= ys + dy) & (ys + dy < height) & (0 <= xs + dx) & (xs + dx < width)
    out[inside] = array[(ys + dy)[inside], (xs + dx)[inside]]
    return out


def write_pairs(folder, masks: dict[str, int]) -> None:
    """8x8 RGB images with masks whose right half is the given class id."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir(parents=True)
    for name, class_id in masks.items():
        Image.new("RGB", (8, 8), (class_id * 40, 0, 0)).save(folder / "images" / f"{name}.png")
        mask = np.zeros((8, 8), dtype=np.uint8)
        mask[:, 4:] = class_id
        Image.fromarray(mask).save(folder / "masks" / f"{name}.png")


# The default suite's training run: short, on the fixed shapes split (batches of 16, 3 epochs). The full run
# (the family's defaults) is the slow test at the end.
SHORT_RUN = {"epochs": 3, "batch_size": 16}
SHORT_RUN_MIN_MEAN_IOU = 0.75
FULL_RUN_MIN_MEAN_IOU = 0.90


@pytest.fixture(scope="module")
def trained_segmenter(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("runs") / "segmentation-shapes"
    results = train(TrainingArguments(model="segmentation", output_dir=str(output_dir), report_to="none", **SHORT_RUN))
    return output_dir, results


def test_short_training_run_learns_to_segment_the_shapes(trained_segmenter):
    _, results = trained_segmenter
    assert results["dataset"]["split"] == "test" and results["metrics"]["num_samples"] == 500
    metrics = results["metrics"]
    assert metrics["mean_iou"] > SHORT_RUN_MIN_MEAN_IOU, metrics
    # every shape kind is told apart, not only shapes from background
    assert min(metrics[f"iou_{name}"] for name in SHAPE_CLASSES) > 0.5, metrics


def test_pipeline_masks_match_the_models_argmax_with_and_without_hfmodels(trained_segmenter, tmp_path):
    output_dir, _ = trained_segmenter
    test_rows = load_source("shapes")["test"].select(range(3))
    images = [image.resize((80, 72)) for image in test_rows["image"]]  # not the model's size: masks are resized
    for index, image in enumerate(images):
        image.save(tmp_path / f"{index}.png")
    model = UNetForSemanticSegmentation.from_pretrained(output_dir).eval()
    processor = UNetImageProcessor.from_pretrained(output_dir)
    with torch.no_grad():
        outputs = model(processor(images, return_tensors="pt")["pixel_values"])
    expected = processor.post_process_semantic_segmentation(outputs, target_sizes=[(72, 80)] * 3)

    def class_ids(segments) -> np.ndarray:
        ids = np.full((72, 80), -1)
        for segment in segments:
            ids[np.asarray(segment["mask"]) > 0] = model.config.label2id[segment["label"]]
        return ids

    segmenter = pipeline("image-segmentation", model=str(output_dir))
    for image, segments, mask in zip(images, segmenter(images), expected):
        assert len({segment["label"] for segment in segments}) == len(segments)  # one mask per class
        np.testing.assert_array_equal(class_ids(segments), mask.numpy())

    torch.save(torch.stack(expected), tmp_path / "expected.pt")
    run_without_hfmodels(
        f"""
        import numpy as np, torch
        from PIL import Image
        from transformers import pipeline
        segmenter = pipeline("image-segmentation", model={str(output_dir)!r}, trust_remote_code=True)
        assert not type(segmenter.model).__module__.startswith("hfmodels"), type(segmenter.model).__module__
        label2id = segmenter.model.config.label2id
        for index, expected in enumerate(torch.load("expected.pt")):
            ids = np.full((72, 80), -1)
            for segment in segmenter(Image.open(f"{{index}}.png")):
                ids[np.asarray(segment["mask"]) > 0] = label2id[segment["label"]]
            assert np.array_equal(ids, expected.numpy()), index
        """,
        cwd=tmp_path,
    )


def test_evaluate_predict_and_card_through_the_cli(trained_segmenter, tmp_path):
    output_dir, results = trained_segmenter
    report = evaluate_saved(output_dir)
    assert report["metrics"]["mean_iou"] == pytest.approx(results["metrics"]["mean_iou"])

    image = load_source("shapes")["test"][0]["image"]
    image.save(tmp_path / "shapes.png")
    result = run_cli("predict", str(output_dir), str(tmp_path / "shapes.png"), "--mask-dir", str(tmp_path / "masks"))
    assert result.returncode == 0, result.stderr[-3000:]
    (prediction,) = json.loads(result.stdout)
    assert prediction["input"] == str(tmp_path / "shapes.png")
    assert sum(segment["fraction"] for segment in prediction["predictions"]) == pytest.approx(1.0)
    with Image.open(tmp_path / "masks" / "shapes.png") as mask:
        assert mask.mode == "L" and mask.size == image.size
        fractions = np.bincount(np.asarray(mask).ravel(), minlength=4) / mask.size[0] / mask.size[1]
    model = UNetForSemanticSegmentation.from_pretrained(output_dir)
    for segment in prediction["predictions"]:
        assert fractions[model.config.label2id[segment["label"]]] == pytest.approx(segment["fraction"], abs=1e-6)

    with Image.open(output_dir / "predictions.png") as picture:
        assert picture.format == "PNG" and min(picture.size) > 100
    result = run_cli("card", str(output_dir))  # renders the card as `hfmodels train` does, then checks it
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_full_training_run_reaches_the_mean_iou_target(tmp_path):
    """`hfmodels train --model segmentation` with the family's defaults: < 5 minutes on 2 CPU cores."""
    results = train(TrainingArguments(model="segmentation", output_dir=str(tmp_path / "run"), report_to="none"))
    assert results["metrics"]["mean_iou"] >= FULL_RUN_MIN_MEAN_IOU, results["metrics"]
