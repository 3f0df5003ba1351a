"""Bad input, fuzzed, for every processor: an image of any PIL mode, an array of any shape and dtype, a tensor, an
empty batch, a mask, a text or something that is none of these either comes out as `pixel_values` (and `labels`,
`input_ids`) of the expected batch size, shape, dtype and range, or is a ValueError / TypeError whose message names
what is wrong; never an error from inside numpy, PIL or torch, and never NaN pixels or a wrong batch size. A saved
image processor loads, and reads and checks images, the same where hfmodels is not installed."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from transformers import AutoImageProcessor

import hfmodels.models
from hfmodels import (
    AutoencoderImageProcessor,
    DiffusionImageProcessor,
    FusionProcessor,
    ImageClassifierImageProcessor,
    UNetImageProcessor,
    VAEImageProcessor,
)
from hfmodels.data.tokenizer import train_tokenizer

from .model_tester import run_without_hfmodels

SIZE = 6  # every processor resizes to SIZE x SIZE: small, so a few hundred examples take seconds


def fuzz(max_examples: int):
    return settings(max_examples=max_examples, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


def centered(processor_class, num_channels: int):
    """Like `hfmodels.families.image_classifier.centered_image_processor`: pixels to [-1, 1]."""
    return processor_class(num_channels=num_channels, size={"height": SIZE, "width": SIZE},
                           image_mean=[0.5] * num_channels, image_std=[0.5] * num_channels)


PROCESSORS = {
    "image-classifier-gray": centered(ImageClassifierImageProcessor, 1),
    "image-classifier-rgb": centered(ImageClassifierImageProcessor, 3),
    "autoencoder": AutoencoderImageProcessor(num_channels=1, size={"height": SIZE, "width": SIZE}),
    "vae": VAEImageProcessor(num_channels=3, size={"height": SIZE, "width": SIZE}),
    "segmentation": centered(UNetImageProcessor, 1),
    "diffusion": centered(DiffusionImageProcessor, 3),
}


def value_range(processor) -> tuple[float, float]:
    """Where pixels of 0..255 land: [-1, 1] centred, [0, 1] only rescaled."""
    if not processor.do_normalize:
        return 0.0, 1.0
    mean, std = np.array(processor.image_mean), np.array(processor.image_std)
    return float(np.min(-mean / std)), float(np.max((1 - mean) / std))


# ---- inputs -------------------------------------------------------------------------------------------------------

SIDES = st.sampled_from([5, 1, 2, 3, 4, 6, 7, 0])  # not st.integers(0, 7): hypothesis favours its simplest, 0
PIL_MODES = sorted(Image.MODES)  # 1, CMYK, F, HSV, I, I;16(B/L/N), L, LA, La, LAB, P, PA, RGB, RGBA, RGBa, RGBX, YCbCr
DTYPES = ["uint8", "uint16", "int8", "int32", "int64", "float16", "float32", "float64", "bool", "complex64", "object",
          "str", "uint8", "float32"]


@st.composite
def pil_images(draw, sides=SIDES):
    mode = draw(st.sampled_from(PIL_MODES))
    size = (draw(sides), draw(sides))
    if (mode == "F" or mode.startswith("I")) and draw(st.booleans()):  # high bit depth: beyond 0..255, NaN
        extremes = ([-1.5, 0.25, 100.5, 300.0, math.nan, math.inf] if mode == "F"
                    else [-1, 256, 70000] if mode == "I" else [256, 65535])
        return Image.new(mode, size, draw(st.sampled_from(extremes)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8), "RGBA").convert(mode)


@st.composite
def array_shapes(draw):
    """Images channels first or last with 0-5 channels, 4-D batches, and any shape of 0 to 5 dimensions."""
    channels, height, width = draw(st.sampled_from([1, 3, 4, 1, 3, 4, 0, 2, 5])), draw(SIDES), draw(SIDES)
    batch = draw(st.sampled_from([1, 2, 3, 0]))
    if draw(st.sampled_from(["laid out"] * 4 + ["any"])) == "any":
        return tuple(draw(st.lists(st.sampled_from([3, 1, 2, 4, 6, 0]), max_size=5)))
    return draw(st.sampled_from([(height, width), (channels, height, width), (height, width, channels),
                                 (batch, channels, height, width), (batch, height, width, channels)]))


@st.composite
def arrays(draw, dtypes=DTYPES):
    shape, dtype = draw(array_shapes()), draw(st.sampled_from(dtypes))
    if dtype == "str":
        return np.full(shape, "a")
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    # [0, 1], 0..255, just beyond 8 bits, 16 bits, beyond float32; sometimes negative too
    scale = draw(st.sampled_from([255.0, 1.0, 255.0, 256.0, 70000.0, 1e300]))
    values = rng.uniform(draw(st.sampled_from([0.0, 0.0, -1.0])) * scale, scale, shape)
    with np.errstate(all="ignore"):
        if np.issubdtype(np.dtype(dtype), np.integer):
            info = np.iinfo(dtype)
            values = np.clip(np.rint(values), info.min, info.max)
        array = np.asarray(values).astype(dtype)  # a 0-d array too, not a numpy scalar
    if array.dtype.kind == "f" and array.size and draw(st.booleans()):
        array.flat[draw(st.integers(0, array.size - 1))] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return array


@st.composite
def tensors(draw):
    tensor = torch.from_numpy(draw(arrays(dtypes=["uint8", "int32", "int64", "float16", "float32", "float64", "bool",
                                                  "complex64"])))
    if tensor.is_floating_point() and draw(st.booleans()):
        tensor = tensor.to(draw(st.sampled_from([torch.bfloat16, torch.float32]))).requires_grad_()
    return tensor


NOT_IMAGES = st.sampled_from([None, 0, 2.5, "", "not an image", "/no/such/image.png", b"\x89PNG", {"pixel_values": 1},
                              [[1, 2], [3, 4]], np.uint8(7), object()])
ONE = st.one_of(pil_images(), pil_images(), arrays(), arrays(), tensors(), NOT_IMAGES)
IMAGES = st.one_of(
    ONE,
    st.lists(ONE, max_size=3),
    st.lists(ONE, max_size=3).map(tuple),
    st.lists(st.lists(ONE, max_size=2), max_size=2),  # nested: transformers flattens a list of lists
)


def batch_size(images) -> int:
    """How many images `images` holds when it is valid: lists flattened, 4-D arrays and tensors a batch."""
    if isinstance(images, (list, tuple)):
        return sum(batch_size(image) for image in images)
    return images.shape[0] if getattr(images, "ndim", None) == 4 else 1


def assert_clear_error(error: Exception, *names: str) -> None:
    """A ValueError or TypeError naming the argument or value that is wrong (not, say, 'could not convert string')."""
    assert isinstance(error, (ValueError, TypeError)), f"{type(error).__name__}: {error}"
    message = str(error).lower()
    assert any(name in message for name in names), f"the message names none of {names}: {error}"


def assert_pixel_values(pixel_values, batch: int, processor) -> None:
    assert isinstance(pixel_values, torch.Tensor) and pixel_values.dtype == torch.float32, pixel_values
    assert tuple(pixel_values.shape) == (batch, processor.num_channels, SIZE, SIZE)
    assert torch.isfinite(pixel_values).all()
    low, high = value_range(processor)
    assert low - 1e-5 <= pixel_values.min() and pixel_values.max() <= high + 1e-5, pixel_values.aminmax()


# ---- the fuzz -----------------------------------------------------------------------------------------------------


# int64 pixels near 2**63 overflow in the luma conversion: they are refused by the resize all the same
@pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("name", sorted(PROCESSORS))
def test_any_images_give_pixel_values_or_a_clear_error(name):
    processor = PROCESSORS[name]

    @fuzz(120)
    @given(images=IMAGES)
    def check(images):
        try:
            outputs = processor(images, return_tensors="pt")
        except (ValueError, TypeError) as error:
            assert_clear_error(error, "image")
            return
        assert set(outputs) == {"pixel_values"}
        assert_pixel_values(outputs["pixel_values"], batch_size(images), processor)

    check()


@st.composite
def masks(draw, height: int, width: int):
    """A mask of class ids, mostly of its image's size: any integer ids (>= num_labels, negative, beyond int64), floats,
    booleans, PIL modes, tensors, other shapes, or no mask at all."""
    shape = draw(st.sampled_from([(height, width), (height, width), (width, height), (height + 1, width),
                                  (1, height, width), (height, width, 1), (height,), ()]))
    kind = draw(st.sampled_from(["int", "uint8", "uint64", "bool", "float", "pil", "tensor", "other"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if kind == "int":
        return rng.integers(draw(st.sampled_from([0, -100])), draw(st.sampled_from([2, 300, 2**40])), shape)
    if kind == "uint8":
        return rng.integers(0, 256, shape).astype(np.uint8)
    if kind == "uint64":
        return rng.integers(0, 4, shape).astype(np.uint64) + np.uint64(draw(st.sampled_from([0, 2**63, 2**64 - 4])))
    if kind == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if kind == "float":
        return rng.integers(0, 3, shape).astype(draw(st.sampled_from(["float32", "float64"])))
    if kind == "pil":
        mode = draw(st.sampled_from(["1", "L", "P", "I", "I;16", "F", "RGB", "LA"]))
        return Image.fromarray(rng.integers(0, 4, (height, width), dtype=np.uint8)).convert(mode)
    if kind == "tensor":
        dtype = draw(st.sampled_from([torch.long, torch.uint8, torch.float32]))
        return torch.from_numpy(rng.integers(0, 4, shape)).to(dtype)
    return draw(st.sampled_from([None, "mask", 3, [], {"mask": 1}, [[0, 1], [1]]]))


@st.composite
def images_and_masks(draw):
    sizes = draw(st.lists(st.tuples(st.integers(1, 7), st.integers(1, 7)), min_size=1, max_size=3))
    images = [np.random.default_rng(index).integers(0, 256, size, dtype=np.uint8) for index, size in enumerate(sizes)]
    masks_ = [draw(masks(*size)) for size in sizes]
    layout = draw(st.sampled_from(["list", "one fewer", "one more", "single"]))
    if layout == "one fewer":
        masks_ = masks_[:-1]
    elif layout == "one more":
        masks_ = [*masks_, masks_[0]]
    elif layout == "single":  # one image and its mask, not in lists
        images, masks_ = images[0], masks_[0]
    return images, masks_


def test_segmentation_masks_give_labels_or_a_clear_error():
    processor = PROCESSORS["segmentation"]

    @fuzz(150)
    @given(inputs=images_and_masks())
    def check(inputs):
        images, segmentation_maps = inputs
        try:
            outputs = processor(images, segmentation_maps=segmentation_maps, return_tensors="pt")
        except (ValueError, TypeError) as error:
            assert_clear_error(error, "segmentation map")
            return
        batch = len(images) if isinstance(images, list) else 1
        assert_pixel_values(outputs["pixel_values"], batch, processor)
        if segmentation_maps is None:  # no masks: no labels
            assert "labels" not in outputs
            return
        labels = outputs["labels"]
        assert labels.dtype == torch.int64 and tuple(labels.shape) == (batch, SIZE, SIZE)
        # nearest-neighbour resizing keeps the class ids, those >= num_labels included (the model's loss rejects them)
        given_masks = segmentation_maps if isinstance(segmentation_maps, list) else [segmentation_maps]
        for label, mask in zip(labels, given_masks):
            mask = mask.numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
            assert set(label.unique().tolist()) <= set(np.unique(mask.astype(np.int64)).tolist())

    check()


def make_fusion_processor() -> FusionProcessor:
    """The fusion processor of these tests (not in PROCESSORS: it needs a trained tokenizer, a few milliseconds)."""
    tokenizer = train_tokenizer(["the digit plus one", "the digit minus two"], vocab_size=300)
    return FusionProcessor(image_processor=centered(ImageClassifierImageProcessor, 1), tokenizer=tokenizer)


@pytest.fixture(scope="module")
def fusion_processor() -> FusionProcessor:
    return make_fusion_processor()


SMALL_IMAGE = st.one_of(
    pil_images(sides=st.integers(1, 5)),
    pil_images(sides=st.integers(1, 5)),
    st.sampled_from([1, 2, 0]).map(lambda n: np.zeros((n, 1, 5, 4), dtype=np.uint8)),  # a 4-D batch of n images
    NOT_IMAGES,
)
TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", "the digit plus one " * 20]))
NOT_TEXT = st.sampled_from([3, None, b"bytes", ["a", 3], ["a", None], [["nested"]], ("a tuple",), np.array(["a"])])


@st.composite
def images_and_texts(draw):
    """Mostly one text per image; sometimes either replaced by anything: none, one, another count, not text."""
    count = draw(st.sampled_from([2, 1, 3, 0]))
    images, text = [draw(SMALL_IMAGE) for _ in range(count)], [draw(TEXT) for _ in range(count)]
    replaced = draw(st.sampled_from(["neither", "neither", "images", "text", "both"]))
    if replaced in ("images", "both"):
        images = draw(st.one_of(st.none(), SMALL_IMAGE, st.lists(SMALL_IMAGE, max_size=3)))
    if replaced in ("text", "both"):
        text = draw(st.one_of(st.none(), TEXT, st.lists(TEXT, max_size=3), NOT_TEXT))
    return images, text


def test_fusion_images_and_texts_give_inputs_or_a_clear_error(fusion_processor):
    @fuzz(150)
    @given(inputs=images_and_texts())
    def check(inputs):
        images, text = inputs
        try:
            outputs = fusion_processor(images=images, text=text, padding=True, return_tensors="pt")
        except (ValueError, TypeError) as error:
            assert_clear_error(error, "image", "text")
            return
        batch = len(text) if isinstance(text, list) else 1
        assert batch == batch_size(images)
        assert_pixel_values(outputs["pixel_values"], batch, fusion_processor.image_processor)
        assert outputs["input_ids"].shape[0] == batch and outputs["attention_mask"].shape == outputs["input_ids"].shape

    check()


# ---- what the fuzz found, pinned down -----------------------------------------------------------------------------


def test_empty_batches_are_errors(fusion_processor):
    for images in ([], (), [[]], np.zeros((0, 1, 5, 5), dtype=np.uint8), torch.zeros(0, 3, 5, 5)):
        with pytest.raises(ValueError, match="images is empty"):
            PROCESSORS["image-classifier-gray"](images)
    with pytest.raises(ValueError, match="no images and no texts"):
        fusion_processor(images=[], text=[])


@pytest.mark.parametrize("mode", PIL_MODES)
@pytest.mark.parametrize("name", ["image-classifier-gray", "image-classifier-rgb"])
def test_every_pil_mode_reads_as_the_colours_it_shows(mode, name):
    """Palette, 1-bit, CMYK, YCbCr, LAB, HSV, grayscale with alpha, ...: the same pixels as the image in RGB."""
    processor = PROCESSORS[name]
    rgba = Image.fromarray(np.random.default_rng(0).integers(0, 256, (7, 5, 4), dtype=np.uint8), "RGBA")
    image = rgba.convert(mode)
    as_rgb = (image.convert("LA") if mode == "La" else image).convert("RGB")
    got, want = (processor(picture, return_tensors="pt")["pixel_values"] for picture in (image, as_rgb))
    torch.testing.assert_close(got, want, rtol=0, atol=2.5 * 2 / 255)  # PIL's own luma rounds a level apart


def test_bool_images_are_black_and_white():
    processor = PROCESSORS["image-classifier-gray"]
    mask = np.random.default_rng(0).integers(0, 2, (5, 7)).astype(bool)
    want = processor(mask.astype(np.uint8) * 255, return_tensors="pt")["pixel_values"]
    for image in (mask, torch.from_numpy(mask), Image.fromarray(mask)):
        torch.testing.assert_close(processor(image, return_tensors="pt")["pixel_values"], want)


def test_float_images_and_tensors_without_numpy_dtypes_match_uint8():
    processor = PROCESSORS["image-classifier-rgb"]
    pixels = np.random.default_rng(0).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    want = processor(pixels, return_tensors="pt")["pixel_values"]
    level = 2 / 255  # one step of 8 bits, in [-1, 1]
    floats = processor(pixels.astype(np.float32), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(floats, want, rtol=0, atol=0)  # floats on the 0-255 scale
    for tensor in (torch.from_numpy(pixels).to(torch.bfloat16), torch.from_numpy(pixels).float().requires_grad_()):
        torch.testing.assert_close(processor(tensor, return_tensors="pt")["pixel_values"], want, rtol=0, atol=0)
    # floats in [0, 1] are already rescaled: transformers' convention is do_rescale=False for them
    scaled = processor(pixels / 255, do_rescale=False, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(scaled, want, rtol=0, atol=level)
    # the luma of a float RGB image is fractional: it resizes like the uint8 image's, not refused by PIL's resize
    gray = PROCESSORS["image-classifier-gray"]
    torch.testing.assert_close(gray(pixels.astype(np.float64), return_tensors="pt")["pixel_values"],
                               gray(pixels, return_tensors="pt")["pixel_values"], rtol=0, atol=level)


def test_clear_errors_for_what_is_no_image():
    processor = PROCESSORS["image-classifier-rgb"]
    cases = [
        (None, TypeError, "images must be a PIL image.*got NoneType"),
        ([Image.new("RGB", (4, 4)), None], TypeError, r"images\[1\] must be"),
        (np.zeros(5), ValueError, r"images has shape \(5,\)"),
        (np.zeros((1, 2, 3, 4, 5)), ValueError, r"images has shape \(1, 2, 3, 4, 5\)"),
        ([np.zeros((2, 3, 4, 4)), np.zeros((3, 4, 4))], ValueError, "images mixes 4-D batches and images"),
        (np.zeros((3, 0, 4)), ValueError, r"shape \(3, 0, 4\).*no pixels"),
        (Image.new("L", (0, 3)), ValueError, "no pixels"),
        (np.full((3, 4, 4), np.nan), ValueError, "NaN or infinite"),
        (np.full((3, 4, 4), "a"), TypeError, "must hold numbers.*dtype <U1"),
        (np.ones((3, 4, 4), dtype=np.complex64), TypeError, "dtype complex64"),
    ]
    for images, error, match in cases:
        with pytest.raises(error, match=match):
            processor(images)
    with pytest.raises(ValueError, match="NaN or infinite"):  # not NaN pixel_values when nothing is resized
        processor(np.full((3, 4, 4), np.inf), do_resize=False)


def test_segmentation_map_errors_name_the_map():
    processor = PROCESSORS["segmentation"]
    image = np.zeros((4, 5), dtype=np.uint8)
    with pytest.raises(ValueError, match="Segmentation map 0 holds class ids up to 18446744073709551615"):
        processor(image, segmentation_maps=np.full((4, 5), 2**64 - 1, dtype=np.uint64))
    with pytest.raises(ValueError, match="Segmentation map 0 .* dtype float32$"):  # a tensor is no PIL image
        processor(image, segmentation_maps=torch.zeros(4, 5))
    with pytest.raises(ValueError, match="Segmentation map 0 .* an object of type NoneType"):
        processor(image, segmentation_maps=[None])


def test_fusion_counts_the_images_the_image_processor_makes(fusion_processor):
    image = Image.new("L", (5, 5))
    with pytest.raises(ValueError, match="2 images but 1 texts"):  # a nested list is flattened into 2 images
        fusion_processor(images=[[image, image]], text=["one text"])
    with pytest.raises(ValueError, match="2 images but 1 texts"):  # so is a 4-D batch in a list
        fusion_processor(images=[np.zeros((2, 1, 5, 5), dtype=np.uint8)], text=["one text"])
    with pytest.raises(ValueError, match="got neither$"):
        fusion_processor()
    with pytest.raises(ValueError, match="`text` must be a string or list of strings"):  # not "1 texts"
        fusion_processor(images=[image, image], text=np.array(["a", "b"]))
    with pytest.raises(TypeError, match="FusionProcessor images must be"):
        fusion_processor(images=[None], text=["a"])


def test_saved_processors_carry_their_shared_base_and_load_without_hfmodels(tmp_path):
    """The four image processors share one file, copied into each image model folder: `save_pretrained` copies it
    beside the family's own file, so a saved processor loads with `trust_remote_code=True` where hfmodels is not
    installed, and processes (and checks) images as the installed one does."""
    shared = Path(hfmodels.models.__file__).with_name("image_processing_base.py")
    image = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    mask = np.arange(63).reshape(9, 7) % 3
    np.save(tmp_path / "image.npy", image)
    np.save(tmp_path / "mask.npy", mask)
    expected = {}
    for name, processor in PROCESSORS.items():
        family_file = Path(sys.modules[type(processor).__module__].__file__)
        copy = family_file.with_name("image_processing_base.py")
        assert not copy.is_symlink() and copy.read_text().endswith(shared.read_text()), copy  # after its header
        processor.save_pretrained(tmp_path / name)
        saved = tmp_path / name / "image_processing_base.py"
        assert (tmp_path / name / family_file.name).is_file()
        assert saved.is_file() and not saved.is_symlink() and saved.read_bytes() == copy.read_bytes()
        assert type(AutoImageProcessor.from_pretrained(tmp_path / name)) is type(processor)
        masks = {"segmentation_maps": mask} if name == "segmentation" else {}
        expected[name] = {"class": type(processor).__name__, **processor(image, return_tensors="pt", **masks)}
    run_without_hfmodels(
        f"""
        import numpy as np, torch, transformers
        image, mask = np.load("image.npy"), np.load("mask.npy")
        for name in {sorted(PROCESSORS)!r}:
            processor = transformers.AutoImageProcessor.from_pretrained(name, trust_remote_code=True)
            assert not type(processor).__module__.startswith("hfmodels"), type(processor).__module__
            masks = {{"segmentation_maps": mask}} if name == "segmentation" else {{}}
            outputs = {{"class": type(processor).__name__, **processor(image, return_tensors="pt", **masks)}}
            torch.save(outputs, f"{{name}}.pt")
            try:  # the input checks travel with the code
                processor(np.full((3, 4, 4), np.nan))
            except ValueError as error:
                assert "NaN or infinite" in str(error), error
            else:
                raise SystemExit(f"{{name}}: an image of NaN was accepted")
        """,
        cwd=tmp_path,
    )
    for name in PROCESSORS:
        reloaded = torch.load(tmp_path / f"{name}.pt")
        assert reloaded.pop("class") == expected[name].pop("class")
        assert reloaded.keys() == expected[name].keys()
        for key, value in reloaded.items():
            torch.testing.assert_close(value, expected[name][key], rtol=0, atol=0)
