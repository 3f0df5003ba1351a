"""Real-size images (issue 23): 1-2 MP JPEGs decoded once at the model's input size and cached, the bad files that
must be named, the validation split that picks the epoch, data loading workers, the pneumonia stand-in at real size."""

import io
import json
import logging
import os
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file

from hfmodels.data import load_source
from hfmodels.data.decoded import CACHE_FOLDER, decoded_images
from hfmodels.data.images import MAX_IMAGE_PIXELS, decode_for_model
from hfmodels.data.pneumonia_demo import REAL_SPLITS, make_pneumonia_demo, real_size_image
from hfmodels.training import TrainingArguments, train

TINY = {"model_config": ["hidden_sizes=[8,8]", "depths=[1,1]"], "report_to": "none", "batch_size": 4}


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch) -> Path:
    """A datasets cache of each test's own, so that what one test decoded is not found by another."""
    cache = tmp_path / "datasets-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    return cache


def write_folder(root: Path, counts: dict[str, int], seed: int = 0) -> Path:
    """Real-size JPEGs (0.9-2.2 MP, of varied proportions) in the chest X-ray layout, `counts[split]` per class."""
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        for name in ("NORMAL", "PNEUMONIA"):
            (root / split / name).mkdir(parents=True)
            for index in range(count):
                real_size_image(rng, name == "PNEUMONIA", rgb=False).save(root / split / name / f"{index}.jpeg")
    return root


@pytest.fixture(scope="module")
def real_size_folder(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("real-size") / "xray", {"train": 6, "val": 2})


class FileOpens:
    """Counts `PIL.Image.open` calls on files (not on the in-memory PNG bytes the cache holds)."""

    def __init__(self, monkeypatch):
        self.files: list[str] = []
        original = Image.open

        def counting_open(source, *args, **kwargs):
            if not isinstance(source, io.BytesIO):
                self.files.append(str(source))
            return original(source, *args, **kwargs)

        monkeypatch.setattr(Image, "open", counting_open)


def cached_files(cache: Path) -> list[str]:
    folder = cache / CACHE_FOLDER
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


def test_images_are_decoded_once_and_the_cache_is_rebuilt_when_a_file_or_the_size_changes(
    real_size_folder, tmp_path, datasets_cache, monkeypatch
):
    from hfmodels.families import get_family
    from hfmodels.training import make_loader

    folder = shutil.copytree(real_size_folder, tmp_path / "xray")
    opens = FileOpens(monkeypatch)
    decoded = decoded_images(load_source(str(folder), check_images=False), 32, 1)
    assert len(opens.files) == 16 and len(cached_files(datasets_cache)) == 2  # every file once; train, validation
    image = decoded["train"][0]["image"]
    assert image.size == (32, 32) and image.mode == "L"

    family = get_family("image-classifier")
    model = family.build_model(decoded["train"], {"image_size": 32, "hidden_sizes": [8], "depths": [1]})
    loader = make_loader(decoded["train"], family, family.build_processor(model.config), True, batch_size=4)
    opens.files.clear()
    for _ in range(2):
        assert sum(len(batch["labels"]) for batch in loader) == 12
    assert opens.files == []  # the epochs read the decoded cache, no image file

    again = decoded_images(load_source(str(folder), check_images=False), 32, 1)  # a second run
    assert opens.files == [] and len(cached_files(datasets_cache)) == 2
    assert again["train"][0]["image"].tobytes() == image.tobytes()

    decoded_images(load_source(str(folder), check_images=False), 48, 1)  # another size: decoded anew
    assert len(opens.files) == 16 and len(cached_files(datasets_cache)) == 4

    opens.files.clear()
    changed = folder / "train" / "NORMAL" / "0.jpeg"
    Image.new("L", (1200, 900), 255).save(changed)
    os.utime(changed, (1e9, 1e9))  # a different modification time, whatever the clock's resolution
    rebuilt = decoded_images(load_source(str(folder), check_images=False), 32, 1)
    assert str(changed) in opens.files and len(cached_files(datasets_cache)) == 6
    row = next(r for r in rebuilt["train"] if r["image"] is not None and r["label"] == 0
               and np.asarray(r["image"]).min() == 255)
    assert row["image"].size == (32, 32)


def test_decoding_keeps_the_proportions_and_reads_jpegs_in_draft_mode(tmp_path, monkeypatch):
    from PIL.JpegImagePlugin import JpegImageFile

    wide = Image.new("L", (1600, 800), 0)
    wide.paste(255, (400, 0, 1200, 800))  # a white centre square between black sides
    wide.save(tmp_path / "wide.jpeg")
    picture = decode_for_model(tmp_path / "wide.jpeg", 16, 1)
    assert picture.size == (16, 16) and np.asarray(picture).min() > 200  # the centre kept, the sides cut off

    drafts = []
    original = JpegImageFile.draft

    def draft(self, mode, size):
        scale = original(self, mode, size)
        drafts.append((size, self.size))
        return scale

    monkeypatch.setattr(JpegImageFile, "draft", draft)
    decode_for_model(tmp_path / "wide.jpeg", 64, 3)
    # asked for at least the model's size on the shorter side; PIL then decodes at 1/8 scale
    assert drafts == [((128, 64), (200, 100))]


def test_bad_files_are_named_and_leave_nothing_in_the_cache(real_size_folder, tmp_path, datasets_cache):
    cases = {}
    truncated = io.BytesIO()
    real_size_image(np.random.default_rng(1), False, rgb=False).save(truncated, format="JPEG")
    cases["truncated.jpeg"] = lambda path: path.write_bytes(truncated.getvalue()[:20_000])
    side = int(MAX_IMAGE_PIXELS**0.5) + 1_000  # about 100 megapixels
    cases["huge.png"] = lambda path: Image.new("L", (side, side)).save(path, compress_level=1)
    for name, write in cases.items():
        folder = shutil.copytree(real_size_folder, tmp_path / name)
        write(folder / "train" / "PNEUMONIA" / name)
        data = load_source(str(folder), check_images=False)
        with pytest.raises(ValueError, match=rf"{name}"):
            decoded_images(data, 32, 1)
        # the validation split may be cached already; of train, nothing, not even a temporary file
        assert len(cached_files(datasets_cache)) <= 1, cached_files(datasets_cache)
        assert all(file.endswith(".arrow") for file in cached_files(datasets_cache))
        shutil.rmtree(datasets_cache / CACHE_FOLDER, ignore_errors=True)
    with pytest.raises(ValueError, match=r"pixels, more than"):
        decode_for_model(folder / "train" / "PNEUMONIA" / "huge.png", 32, 1)


def test_16_bit_and_cmyk_files_are_read_as_the_pictures_they_are(tmp_path):
    ramp = (np.arange(64 * 64).reshape(64, 64) * 4).astype(np.uint16)  # 0 .. 16380 of 65535: a dim 16-bit X-ray
    Image.fromarray(ramp).save(tmp_path / "16bit.png")
    assert Image.open(tmp_path / "16bit.png").mode.startswith("I;16")
    gray = np.asarray(decode_for_model(tmp_path / "16bit.png", 64, 1))
    assert gray.min() == 0 and gray.max() == 255  # stretched over its own range, not clipped at 255

    Image.new("CMYK", (900, 1200), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpeg")  # white, in CMYK
    assert Image.open(tmp_path / "cmyk.jpeg").mode == "CMYK"
    rgb = decode_for_model(tmp_path / "cmyk.jpeg", 32, 3)
    assert rgb.mode == "RGB" and np.asarray(rgb).min() > 245


def test_a_class_missing_from_one_split_is_named(tmp_path):
    root = tmp_path / "xray"
    for split, classes in (("train", ("NORMAL", "PNEUMONIA")), ("test", ("PNEUMONIA",))):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            Image.new("L", (20, 20)).save(root / split / name / "a.png")
    (root / "test" / "NORMAL").mkdir()  # there, but empty
    with pytest.raises(ValueError, match=r"split 'test' has no image of class\(es\) \['NORMAL'\]"):
        load_source(str(root), check_images=False)


def test_training_on_real_size_jpegs_resumes_bit_identically_and_records_its_validation_split(
    real_size_folder, tmp_path, caplog
):
    common = {**TINY, "dataset": str(real_size_folder), "image_size": 32, "max_steps": 6, "checkpoint_every": 3,
              "num_workers": "0"}
    with caplog.at_level(logging.WARNING, logger="hfmodels.training.loop"):
        reference = train(TrainingArguments(**common, output_dir=str(tmp_path / "reference")))
    assert "only 4 rows, too few to choose the best epoch on" in caplog.text
    assert reference["validation"] == {"origin": "the source's validation split", "num_samples": 4}
    assert "logistic regression on the 32x32 pixels" in reference["baselines"]

    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "reference" / "checkpoints" / "step-3", resumed / "checkpoints" / "step-3")
    train(TrainingArguments(**common, output_dir=str(resumed), resume_from_checkpoint="latest"))
    first, second = (load_file(folder / "model.safetensors") for folder in (tmp_path / "reference", resumed))
    assert all((first[key] == second[key]).all() for key in first)

    carved = train(TrainingArguments(**{**common, "max_steps": 1}, validation_from_train=0.25,
                                     output_dir=str(tmp_path / "carved")))
    assert carved["validation"] == {"origin": "carved from train (25%, stratified, seed 0)", "num_samples": 3}
    assert carved["dataset"]["sizes"] == {"train": 9, "validation": 3}


def test_num_workers_auto_leaves_the_cores_training_uses(monkeypatch):
    import torch
    from accelerate import Accelerator

    from hfmodels.training.loop import resolve_num_workers

    accelerator = Accelerator(cpu=True)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert resolve_num_workers("auto", accelerator) == 4
    assert resolve_num_workers("3", accelerator) == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")  # three training processes on this machine: two cores each
    assert resolve_num_workers("auto", accelerator) == 0
    with pytest.raises(ValueError, match="--num-workers must be auto or a whole number"):
        TrainingArguments(num_workers="many")
    with pytest.raises(ValueError, match="--validation-from-train must be a fraction"):
        TrainingArguments(validation_from_train=1.5)
    with pytest.raises(ValueError, match="--image-size and --model-config image_size"):
        TrainingArguments(image_size=32, model_config=["image_size=64"])


def test_the_pneumonia_stand_in_has_the_real_layout_at_real_size(tmp_path):
    counts = make_pneumonia_demo(tmp_path / "demo", scale_down=400)
    assert counts == {split: {name: max(2, round(n / 400)) for name, n in classes.items()}
                      for split, classes in REAL_SPLITS.items()}
    files = sorted((tmp_path / "demo").rglob("*.jpeg"))
    assert len(files) == sum(sum(classes.values()) for classes in counts.values())
    images = [Image.open(file) for file in files]
    megapixels = [image.width * image.height / 1e6 for image in images]
    assert 0.9 <= min(megapixels) and max(megapixels) <= 2.2
    assert len({image.size for image in images}) == len(images)  # sizes vary
    assert {image.mode for image in images} == {"L", "RGB"}
    assert json.loads((tmp_path / "demo" / "hfmodels_data.json").read_text()) == {"synthetic": True, "medical": True}
    with pytest.raises(ValueError, match="scale_down=0"):
        make_pneumonia_demo(tmp_path / "other", scale_down=0)


def test_a_validation_split_that_cannot_be_stratified_says_what_to_change():
    """Too few rows of a class, or too few rows for the fraction, for a validation split with every class: a message
    naming the class or the fraction and what to do, not scikit-learn's."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    from hfmodels.data import with_validation_split

    features = Features({"x": Value("int32"), "label": ClassLabel(names=["NORMAL", "PNEUMONIA"])})
    one_normal = Dataset.from_dict({"x": list(range(9)), "label": [0] + [1] * 8}, features=features)
    with pytest.raises(ValueError, match=r"class 'NORMAL' has 1 training row\(s\).*give the dataset a validation"):
        with_validation_split(DatasetDict({"train": one_normal}), seed=0)
    balanced = Dataset.from_dict({"x": list(range(10)), "label": [0, 1] * 5}, features=features)
    with pytest.raises(ValueError, match=r"1 validation rows for 2 classes.*--validation-from-train"):
        with_validation_split(DatasetDict({"train": balanced}), seed=0, fraction=0.05)
    assert len(with_validation_split(DatasetDict({"train": balanced}), seed=0, fraction=0.2)["validation"]) == 2
