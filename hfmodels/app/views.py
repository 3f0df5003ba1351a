"""The web app: one Gradio view per model family, in one registry, and `build_app` that puts a view beside the
model card.

SELF-CONTAINED like a model folder: this file imports only the standard library, numpy, Pillow, torch,
transformers and gradio, so `hfmodels space export` copies it into a Space that runs without hfmodels (the model
is loaded from its own code with `trust_remote_code=True`).

A new family is one function decorated with `@view(family)` (the family's `--model` name) that lays out its
inputs and outputs inside the open `gr.Blocks` and wires them to its prediction functions (each with an
`api_name`, so `gradio_client` can call it). The model is loaded with the Auto class its own `config.json` names
for it (`auto_map`), its processor with `AutoProcessor`. What the model is (a medical model, trained on synthetic
data) is read from the fields its run recorded in `eval_results.json`, never guessed from its labels or card.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from threading import Thread
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported: no usage reports

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from PIL import Image, ImageOps, UnidentifiedImageError  # noqa: E402

MAX_PIXELS = 6000 * 6000  # larger uploads are refused before decoding (decompression bombs)
DISPLAY_SIZE = 256  # side of the pictures the app shows, so that 8x8 inputs are visible
MAX_PROMPT_CHARACTERS = 4000
# System fonts only: the default theme would make every visitor's browser fetch fonts from Google.
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
NOT_A_DIAGNOSTIC_DEVICE = (
    "**This model is not a diagnostic device.** It must not be used to diagnose, treat or rule out any condition; "
    "a clinician decides, never this app."
)
TRAINED_ON_SYNTHETIC_DATA = (
    "**Trained on synthetic data**: generated, not collected from the real world; its scores say nothing about "
    "real data."
)


@dataclass
class Loaded:
    """A model ready to serve, with what a view needs to lay itself out."""

    model: Any
    processor: Any
    config: Any
    model_dir: Path
    examples: list[str]


VIEWS: dict[str, Callable[[Loaded], None]] = {}  # family name -> the function that lays out its view


def view(family: str):
    """Registers the decorated function as the view of `family`."""

    def register(build: Callable[[Loaded], None]) -> Callable[[Loaded], None]:
        VIEWS[family] = build
        return build

    return register


# --- inputs: every bad upload becomes a message in the page, never a stack trace ------------------------------


def image_input(label: str) -> gr.Image:
    """A `gr.Image` whose own decoding step reports unreadable uploads and decompression bombs as a message. (Its
    `preprocess` is wrapped on the instance: a subclass would make gradio write a .pyi file beside this one.)"""
    # image_mode=None: gradio hands over the uploaded file as it is; with a mode it would decode the whole picture and
    # write it again first (a third of the time a 2,000 x 2,000 JPEG takes), and `read_image` converts it anyway
    component = gr.Image(label=label, type="filepath", sources=["upload", "clipboard"], height=DISPLAY_SIZE + 64,
                         image_mode=None)
    decode = component.preprocess

    def preprocess(payload):
        try:
            return decode(payload)
        except Image.DecompressionBombError as error:
            raise gr.Error(f"The image is too large to open safely ({error}).") from error
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            name = getattr(payload, "orig_name", None) or "The upload"
            raise gr.Error(f"{name} is not an image this app can read ({type(error).__name__}).") from error

    component.preprocess = preprocess
    return component


def image_and_button(loaded: "Loaded", action: str) -> tuple[gr.Image, gr.Button]:
    """The input column of the one-image views: the upload, the button that runs `action`, the examples."""
    image = image_input("Image")
    button = gr.Button(action, variant="primary")
    if loaded.examples:
        gr.Examples(loaded.examples, inputs=image)
    return image, button


def read_image(path: str | None, what: str = "an image", config=None) -> Image.Image:
    """The upload as an 8-bit L or RGB image; too many pixels, an unreadable file or nothing at all -> gr.Error.
    Given the model's `config`, a large JPEG is decoded at a reduced scale that still leaves the model's input size
    and the display size (PIL's draft mode: a 2,000 x 2,000 X-ray decodes about 4x faster at 500 x 500)."""
    if not path:
        raise gr.Error(f"Upload {what} first (drag and drop, paste, or pick an example).")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                raise gr.Error(
                    f"The image is {image.width}x{image.height} = {image.width * image.height:,} pixels; this app "
                    f"accepts up to {MAX_PIXELS:,}. Downscale it first."
                )
            if config is not None and image.format == "JPEG":
                needed = max(getattr(config, "image_size", 0), DISPLAY_SIZE)
                shorter = min(image.size)
                image.draft("L" if getattr(config, "num_channels", 3) == 1 else "RGB",
                            (image.width * needed // shorter, image.height * needed // shorter))
            image.load()
            return to_8bit(ImageOps.exif_transpose(image))  # a photo upright as its camera meant it
    except Image.DecompressionBombError as error:
        raise gr.Error(f"The image is too large to open safely ({error}).") from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise gr.Error(f"{Path(path).name} is not an image this app can read ({type(error).__name__}).") from error


def to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float images scaled to 0..255 by their own range; transparency flattened onto black (the
    background of the training images); palettes and CMYK to RGB."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        low, high = pixels.min(), pixels.max()
        scaled = (pixels - low) / (high - low) * 255 if high > low else np.zeros_like(pixels)
        return Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode in ("L", "RGB") else image.convert("RGB")


def for_model(image: Image.Image, config) -> Image.Image:
    """The image in the channels the model reads (config.num_channels)."""
    return image.convert("L" if getattr(config, "num_channels", 3) == 1 else "RGB")


def enlarged(image: Image.Image) -> Image.Image:
    """A small picture scaled up to about DISPLAY_SIZE, without blurring its pixels; a large one scaled down to
    DISPLAY_SIZE on its longer side. Either keeps the picture's proportions."""
    if max(image.size) > DISPLAY_SIZE:
        scale = DISPLAY_SIZE / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        return image.resize(size, Image.Resampling.BILINEAR)
    scale = max(1, DISPLAY_SIZE // max(image.size))
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def to_pictures(pixels: torch.Tensor) -> list[Image.Image]:
    """(batch, channels, height, width) pixels in [0, 1] -> enlarged PIL images."""
    arrays = (pixels.detach().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
    return [enlarged(Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)) for a in arrays]


def grid(images: list[Image.Image], columns: int) -> Image.Image:
    width, height = images[0].size
    rows = -(-len(images) // columns)
    sheet = Image.new(images[0].mode, (columns * width, rows * height))
    for index, image in enumerate(images):
        sheet.paste(image, ((index % columns) * width, (index // columns) * height))
    return sheet


def cached_picture(image: Image.Image) -> str:
    """The image as a PNG in gradio's file cache, written atomically. gradio (6.31) writes returned images into
    its cache non-atomically, under a name given by their content, so two requests producing the same picture at
    once (two visitors clicking one example) could be served a half-written file."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    folder = Path(gr.utils.get_upload_folder()) / hashlib.sha256(data).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "image.png"
    if not path.exists():
        handle, staging = tempfile.mkstemp(dir=folder, prefix=".image.")
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(staging, path)
    return str(path)


def probabilities(logits: torch.Tensor, config) -> dict[str, float]:
    """(num_labels,) logits -> {label name: probability}."""
    return {config.id2label[index]: float(p) for index, p in enumerate(logits.softmax(-1).tolist())}


# --- the card beside the inputs -------------------------------------------------------------------------------


def card_markdown(model_dir: Path) -> str:
    """What the run recorded it is (eval_results.json: `medical` -> the statement that it is not a diagnostic
    device; `dataset.synthetic` -> that its data was generated), its headline metrics, and the card's limitations
    (README.md)."""
    parts = []
    results_file = model_dir / "eval_results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    dataset = results.get("dataset", {})
    if results.get("medical"):
        parts.append(NOT_A_DIAGNOSTIC_DEVICE)
    if dataset.get("synthetic"):
        parts.append(TRAINED_ON_SYNTHETIC_DATA)
    name = dataset.get("name")
    if name and Path(name).is_absolute():  # a local folder by its name: its absolute path is of no use to visitors
        name = Path(name).name
    where = " ".join(filter(None, [name and f"`{name}`", dataset.get("split")]))
    rows = [f"| {name} | {value:.4g} |" for name, value in results.get("metrics", {}).items()
            if isinstance(value, float) and name != "loss"]
    if rows:
        parts.append(f"### Results{' on ' + where if where else ''}\n\n| metric | value |\n|---|---|\n"
                     + "\n".join(rows))
    card = (model_dir / "README.md").read_text() if (model_dir / "README.md").is_file() else ""
    limitations = re.search(r"^## [^\n]*[Ll]imitations[^\n]*\n(.*?)(?=^## |\Z)", card, re.S | re.M)
    if limitations:
        parts.append("### Intended uses and limitations\n\n" + limitations.group(1).strip())
    if not parts:
        parts.append("This model folder has no model card (README.md) or eval_results.json.")
    return "\n\n".join(parts)


# --- the views ------------------------------------------------------------------------------------------------


def saliency_overlay(image: Image.Image, heat: torch.Tensor, centre_square: bool = False) -> Image.Image:
    """`heat` (height, width) >= 0 over the image, in red/yellow where it is high, at the image's own proportions:
    stretched over all of it, or with `centre_square` over the centre square the model read (a processor that
    resizes the shorter side and crops the centre)."""
    shown = enlarged(image).convert("RGB")
    width, height = shown.size
    box = (width, height)
    if centre_square:
        box = (min(width, height), min(width, height))
    heat = heat / heat.max() if heat.max() > 0 else heat
    heat = torch.nn.functional.interpolate(heat[None, None], size=box[::-1], mode="bilinear")[0, 0]
    left, top = (width - box[0]) // 2, (height - box[1]) // 2
    heat = torch.nn.functional.pad(heat, (left, width - box[0] - left, top, height - box[1] - top))
    heat = heat.clamp(0, 1).numpy()[..., None]  # (height, width, 1)
    colour = np.concatenate([np.ones_like(heat), heat, np.zeros_like(heat)], axis=-1) * 255  # red -> yellow
    blended = np.asarray(shown, dtype=np.float64) * (1 - 0.6 * heat) + colour * 0.6 * heat
    return Image.fromarray(blended.round().astype(np.uint8))


def grad_cam(model, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (num_labels,) and the Grad-CAM map (height, width) of the top class on the last feature maps:
    where the last convolution stage saw what raised the winning logit."""
    with torch.enable_grad():
        outputs = model(pixel_values=pixel_values, output_hidden_states=True)
        features = outputs.hidden_states[-1]  # (1, channels, height, width)
        logits = outputs.logits[0]  # (num_labels,)
        (gradient,) = torch.autograd.grad(logits[logits.argmax()], features)
    weights = gradient.mean(dim=(2, 3), keepdim=True)  # (1, channels, 1, 1)
    return logits.detach(), (weights * features).sum(1)[0].relu().detach()


@view("image-classifier")
def image_classifier_view(loaded: Loaded) -> None:
    model, processor, config = loaded.model, loaded.processor, loaded.config

    centre_square = bool(getattr(processor, "do_center_crop", False))  # models saved before issue 23 stretch

    def classify(path: str | None) -> tuple[dict[str, float], str]:
        image = for_model(read_image(path, config=config), config)
        pixel_values = processor(image, return_tensors="pt")["pixel_values"]
        logits, heat = grad_cam(model, pixel_values)
        return probabilities(logits, config), cached_picture(saliency_overlay(image, heat, centre_square))

    with gr.Row():
        with gr.Column():
            image, button = image_and_button(loaded, "Classify")
        with gr.Column():
            label = gr.Label(label="Class probabilities", num_top_classes=min(5, config.num_labels))
            overlay = gr.Image(label="Saliency (Grad-CAM of the top class, last conv stage)", type="filepath")
    button.click(classify, inputs=image, outputs=[label, overlay], api_name="classify")


@view("segmentation")
def segmentation_view(loaded: Loaded) -> None:
    model, processor, config = loaded.model, loaded.processor, loaded.config

    def segment(path: str | None) -> tuple[str, list[tuple[np.ndarray, str]]]:
        image = for_model(read_image(path), config)
        shown = enlarged(image).convert("RGB")
        with torch.no_grad():
            logits = model(pixel_values=processor(image, return_tensors="pt")["pixel_values"]).logits
        logits = torch.nn.functional.interpolate(logits, size=shown.size[::-1], mode="bilinear")
        mask = logits[0].argmax(0).numpy()  # (height, width) class ids
        # one layer per class found, background (class 0) left unpainted; the legend names them
        layers = [((mask == index).astype(np.float32), config.id2label[index])
                  for index in np.unique(mask).tolist() if index != 0]
        return cached_picture(shown), layers

    with gr.Row():
        with gr.Column():
            image, button = image_and_button(loaded, "Segment")
        overlay = gr.AnnotatedImage(label="Predicted mask (legend: the classes found)")
    button.click(segment, inputs=image, outputs=overlay, api_name="segment")


def image_to_pixels(path: str | None, loaded: Loaded, what: str = "an image") -> torch.Tensor:
    """An upload as the model's (1, channels, height, width) pixel values."""
    image = for_model(read_image(path, what), loaded.config)
    return loaded.processor(image, return_tensors="pt")["pixel_values"]


@view("autoencoder")
def autoencoder_view(loaded: Loaded) -> None:
    def reconstruct(path: str | None) -> tuple[str, str, float]:
        pixel_values = image_to_pixels(path, loaded)
        with torch.no_grad():
            reconstruction = loaded.model(pixel_values=pixel_values).reconstruction
        error = float(torch.nn.functional.mse_loss(reconstruction, pixel_values))
        return *map(cached_picture, to_pictures(torch.cat([pixel_values, reconstruction]))), error

    with gr.Row():
        with gr.Column():
            image, button = image_and_button(loaded, "Reconstruct")
        original = gr.Image(label="Original (as the model sees it)", type="filepath")
        reconstruction = gr.Image(label="Reconstruction", type="filepath")
    error = gr.Number(label="Mean squared error")
    button.click(reconstruct, inputs=image, outputs=[original, reconstruction, error], api_name="reconstruct")


@view("vae")
def vae_view(loaded: Loaded) -> None:
    model = loaded.model

    def sample(seed: float, count: float) -> str:
        generator = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            images = to_pictures(model.sample(int(count), generator=generator))
        return cached_picture(grid(images, columns=min(int(count), 8)))

    def interpolate(first: str | None, second: str | None, steps: float) -> str:
        a = image_to_pixels(first, loaded, "the first image")[0]
        b = image_to_pixels(second, loaded, "the second image")[0]
        with torch.no_grad():
            images = to_pictures(model.interpolate(a, b, int(steps)))
        return cached_picture(grid(images, columns=int(steps)))

    with gr.Tab("Samples"):
        with gr.Row():
            seed = gr.Number(label="Seed", value=0, precision=0)
            count = gr.Slider(1, 64, value=16, step=1, label="Samples")
        sample_button = gr.Button("Sample", variant="primary")
        samples = gr.Image(label="Samples from the prior N(0, I)", type="filepath")
    with gr.Tab("Interpolation"):
        with gr.Row():
            first, second = image_input("From"), image_input("To")
        steps = gr.Slider(2, 16, value=8, step=1, label="Steps")
        interpolate_button = gr.Button("Interpolate", variant="primary")
        if len(loaded.examples) >= 2:
            gr.Examples([loaded.examples[:2]], inputs=[first, second])
        strip = gr.Image(label="Decoded points on the line between the two latent means", type="filepath")
    sample_button.click(sample, inputs=[seed, count], outputs=samples, api_name="sample")
    interpolate_button.click(interpolate, inputs=[first, second, steps], outputs=strip, api_name="interpolate")


DIFFUSION_SCHEDULERS = ("ddim", "dpm-solver", "ddpm")  # the names `DiffusionForImageGeneration.sample` takes
ANY_CLASS = "(none: unconditional)"


@view("diffusion")
def diffusion_view(loaded: Loaded) -> None:
    model, config = loaded.model, loaded.config
    class_names = [config.id2label[i] for i in range(config.num_classes)] if config.num_classes else []

    def sample(seed: float, count: float, steps: float, scheduler: str, class_name: str, guidance: float) -> str:
        if class_name not in (ANY_CLASS, *class_names):
            raise gr.Error(f"Unknown class {class_name!r}; choose one of: {', '.join(class_names) or 'none'}.")
        labels = class_names.index(class_name) if class_name in class_names else None
        generator = torch.Generator().manual_seed(int(seed))
        try:
            images = model.sample(int(count), int(steps), scheduler, generator=generator, labels=labels,
                                  guidance_scale=float(guidance))
        except (ImportError, ValueError) as error:  # no diffusers, an unknown scheduler, too many steps
            raise gr.Error(str(error)) from error
        return cached_picture(grid(to_pictures(images), columns=min(int(count), 8)))

    with gr.Tab("Samples"):
        with gr.Row():
            seed = gr.Number(label="Seed", value=0, precision=0)
            count = gr.Slider(1, 64, value=16, step=1, label="Samples")
        with gr.Row():
            scheduler = gr.Dropdown(list(DIFFUSION_SCHEDULERS), value="ddim", label="Scheduler")
            steps = gr.Slider(1, config.num_train_timesteps, value=min(50, config.num_train_timesteps), step=1,
                              label="Denoising steps")
        with gr.Row(visible=bool(class_names)):
            class_name = gr.Dropdown([ANY_CLASS, *class_names], value=ANY_CLASS, label="Class")
            guidance = gr.Slider(0, 10, value=2.0, step=0.5, label="Classifier-free guidance scale")
        sample_button = gr.Button("Sample", variant="primary")
        samples = gr.Image(label="Samples denoised from Gaussian noise", type="filepath")
    sample_button.click(sample, inputs=[seed, count, steps, scheduler, class_name, guidance], outputs=samples,
                        api_name="sample")


def read_prompt(text: str | None, what: str = "a prompt") -> str:
    if not text or not text.strip():
        raise gr.Error(f"Write {what} first.")
    if len(text) > MAX_PROMPT_CHARACTERS:
        raise gr.Error(f"The text has {len(text):,} characters; this app accepts up to {MAX_PROMPT_CHARACTERS:,}.")
    return text


@view("gpt")
def gpt_view(loaded: Loaded) -> None:
    model, tokenizer = loaded.model, loaded.processor

    def generate(prompt: str | None, temperature: float, top_p: float, max_new_tokens: float) -> Iterator[str]:
        prompt = read_prompt(prompt)
        inputs = tokenizer(prompt, return_tensors="pt")
        room = model.config.max_position_embeddings - inputs["input_ids"].shape[1]
        if room < 1:
            raise gr.Error(f"The prompt is {inputs['input_ids'].shape[1]} tokens; the model reads at most "
                           f"{model.config.max_position_embeddings}. Shorten it.")
        streamer = transformers.TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        options = dict(do_sample=temperature > 0, max_new_tokens=min(int(max_new_tokens), room), streamer=streamer,
                       pad_token_id=tokenizer.pad_token_id)
        if temperature > 0:
            options.update(temperature=temperature, top_p=top_p)
        Thread(target=model.generate, kwargs={**inputs, **options}, daemon=True).start()
        text = prompt
        for piece in streamer:  # tokens as they are generated
            text += piece
            yield text

    with gr.Row():
        with gr.Column():
            prompt = gr.Textbox(label="Prompt", lines=4)
            temperature = gr.Slider(0, 2, value=0.8, step=0.05, label="Temperature (0: greedy)")
            top_p = gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p")
            max_new_tokens = gr.Slider(1, 512, value=64, step=1, label="Max new tokens")
            button = gr.Button("Generate", variant="primary")
        output = gr.Textbox(label="Prompt and generated text", lines=12)
    button.click(generate, inputs=[prompt, temperature, top_p, max_new_tokens], outputs=output, api_name="generate")


@view("text-classifier")
def text_classifier_view(loaded: Loaded) -> None:
    model, tokenizer, config = loaded.model, loaded.processor, loaded.config

    def classify(text: str | None) -> dict[str, float]:
        inputs = tokenizer(read_prompt(text, "a text"), truncation=True, return_tensors="pt")
        with torch.no_grad():
            return probabilities(model(**inputs).logits[0], config)

    with gr.Row():
        with gr.Column():
            text = gr.Textbox(label="Text", lines=6)
            button = gr.Button("Classify", variant="primary")
        label = gr.Label(label="Label probabilities", num_top_classes=min(5, config.num_labels))
    button.click(classify, inputs=text, outputs=label, api_name="classify")


@view("fusion")
def fusion_view(loaded: Loaded) -> None:
    model, processor, config = loaded.model, loaded.processor, loaded.config
    vision_config = config.vision_config

    def classify(path: str | None, text: str | None) -> dict[str, float]:
        image = for_model(read_image(path), vision_config)
        inputs = processor(images=[image], text=[read_prompt(text, "a text")], truncation=True, return_tensors="pt")
        with torch.no_grad():
            return probabilities(model(**inputs).logits[0], config)

    with gr.Row():
        with gr.Column():
            image = image_input("Image")
            text = gr.Textbox(label="Text about the image", lines=2)
            button = gr.Button("Classify", variant="primary")
        label = gr.Label(label="Label probabilities", num_top_classes=min(5, config.num_labels))
    button.click(classify, inputs=[image, text], outputs=label, api_name="classify")


# --- the app --------------------------------------------------------------------------------------------------


def auto_model_class(config) -> type:
    """The transformers Auto class that loads a saved model: the one its config's `auto_map` names for the class in
    its `architectures` (save_pretrained writes both)."""
    architecture = (config.architectures or [None])[0]
    for auto_class, reference in (getattr(config, "auto_map", None) or {}).items():
        if auto_class.startswith("AutoModel") and reference.rsplit(".", 1)[-1] == architecture:
            return getattr(transformers, auto_class)
    raise ValueError(f"config.json maps no Auto class to its architecture {architecture!r} (auto_map: "
                     f"{getattr(config, 'auto_map', None)!r})")


def load_model(model_class: type, model_dir: Path, config, trust_remote_code: bool):
    """The saved model; of a LoRA run (an adapter, no weights of its own), its base model loaded with the run's config
    and the adapter merged in. This file also runs alone, in an exported Space: hfmodels' own loader of adapter runs
    (`hfmodels.pretrained.adapters.load_adapter_run`) is not importable there."""
    if not (model_dir / "adapter_config.json").is_file() or (model_dir / "model.safetensors").is_file():
        return model_class.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    from peft import PeftConfig, PeftModel

    adapter = PeftConfig.from_pretrained(str(model_dir))
    base = model_class.from_pretrained(adapter.base_model_name_or_path, revision=adapter.revision, config=config,
                                       trust_remote_code=trust_remote_code, strict=False, ignore_mismatched_sizes=True)
    return PeftModel.from_pretrained(base, str(model_dir)).merge_and_unload()


def load(model_dir: str | Path, family: str, trust_remote_code: bool, examples: list[str] | None = None) -> Loaded:
    if family not in VIEWS:
        raise ValueError(f"no app view for the {family!r} family; views exist for: {', '.join(sorted(VIEWS))}")
    model_dir = Path(model_dir)
    config = transformers.AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    model = load_model(auto_model_class(config), model_dir, config, trust_remote_code).eval()
    processor = transformers.AutoProcessor.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    return Loaded(model, processor, model.config, model_dir, list(examples or []))


def build_app(
    model_dir: str | Path, family: str, trust_remote_code: bool = False, examples: list[str] | None = None,
    concurrency: int = 2, queue_size: int = 64, title: str | None = None,
) -> gr.Blocks:
    """The app of one model: its family's view beside the model card, behind a queue that runs at most
    `concurrency` predictions at once and holds at most `queue_size` waiting ones."""
    loaded = load(model_dir, family, trust_remote_code, examples)
    title = title or f"{Path(model_dir).name} ({family})"
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"# {title}")
        with gr.Row():
            with gr.Column(scale=3):
                VIEWS[family](loaded)
            with gr.Column(scale=2):
                gr.Markdown(card_markdown(loaded.model_dir), elem_id="model-card")
    return app.queue(default_concurrency_limit=concurrency, max_size=queue_size)


def launch(app: gr.Blocks, port: int | None = None, share: bool = False, block: bool = True):
    """Serves on 127.0.0.1 (GRADIO_SERVER_NAME overrides it, as Spaces do); `share` opens a public gradio.live
    link, only when asked."""
    return app.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), server_port=port, share=share,
        prevent_thread_lock=not block, show_error=True, theme=THEME,
    )
