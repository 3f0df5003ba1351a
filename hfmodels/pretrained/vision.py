"""`--backbone REPO|FOLDER`: a pretrained transformers vision backbone as the encoder of an image family.

transformers 5.24's `AutoBackbone.from_pretrained` first asks the Hub whether the repo exists (it refuses a local
folder and fails offline, cached or not), so the backbone class is found from the config instead
(`MODEL_FOR_BACKBONE_MAPPING`) and loaded with its own `from_pretrained`: a Hub id then goes through the Hub client's
download code, a folder is read as it is. A classifier's folder (a `ResNetForImageClassification`) gives its body.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedConfig, PreTrainedModel

from . import ModelReference

logger = logging.getLogger(__name__)

FEATURE_MAP_NORMS = "hidden_states_norms."


def backbone_class(reference: ModelReference, config: PreTrainedConfig) -> type[PreTrainedModel]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_BACKBONE_MAPPING

    try:
        return MODEL_FOR_BACKBONE_MAPPING[type(config)]
    except KeyError:
        known = sorted({cls.model_type for cls in MODEL_FOR_BACKBONE_MAPPING.keys() if cls.model_type})
        raise reference.error(f"not a vision backbone: a {config.model_type} model (a text encoder is for the text "
                              f"side of fusion: --text-backbone); --backbone takes {', '.join(known[:12])}, ...") \
            from None


def load_backbone(reference: ModelReference, all_stages: bool = False) -> PreTrainedModel:
    """The pretrained backbone, reading every stage's feature map (`all_stages`) or only the last's, every weight
    loaded."""
    config = reference.load_config()
    model_class = backbone_class(reference, config)
    names = config.stage_names[1:]  # stage_names[0] is the stem
    out_features = names if all_stages else names[-1:]
    try:
        backbone, info = model_class.from_pretrained(reference.name, revision=reference.revision,
                                                     out_features=out_features, output_loading_info=True)
    except (OSError, ValueError) as error:
        raise reference.error("its weights could not be loaded", error) from error
    # a backbone may norm each feature map it gives (ConvNeXt, Swin): norms a classifier's checkpoint never had
    missing = sorted(key for key in info["missing_keys"] if not key.startswith(FEATURE_MAP_NORMS))
    if missing or info["mismatched_keys"]:
        raise reference.error(f"the folder does not hold the backbone's weights (missing {missing[:5]}, of another "
                              f"shape {sorted(key for key, *_ in info['mismatched_keys'])[:5]})")
    if info["missing_keys"]:
        logger.info("--backbone %s: new norms of its feature maps, initialised anew: %s", reference,
                    sorted(info["missing_keys"]))
    return backbone


def preprocessing(reference: ModelReference) -> dict[str, Any]:
    """What the backbone was trained to read, from its preprocessor_config.json: image_mean, image_std and the
    square size (its crop size, else its size); empty where it has none."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = (Path(reference.name, "preprocessor_config.json") if reference.is_local
                else Path(hf_hub_download(reference.name, "preprocessor_config.json", revision=reference.revision)))
    except (EntryNotFoundError, OSError):
        return {}
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    found = {key: saved[key] for key in ("image_mean", "image_std") if saved.get(key)}
    for key in ("crop_size", "size"):
        size = saved.get(key) or {}
        side = size.get("shortest_edge") or size.get("height") if isinstance(size, dict) else size
        if side:
            found["image_size"] = int(side)
            break
    return found


def fitted_image_processor(reference: ModelReference, processor, num_channels: int):
    """`processor` (an hfmodels image processor, at the size the model reads) feeding the backbone `reference` what
    it was trained on: its channels, and its preprocessor's mean and std where it has them."""
    trained_on = preprocessing(reference)
    return type(processor).from_dict({**processor.to_dict(), "num_channels": num_channels,
                                      "image_mean": trained_on.get("image_mean", [0.5] * num_channels),
                                      "image_std": trained_on.get("image_std", [0.5] * num_channels)})


def check_forward(reference: ModelReference, backbone: PreTrainedModel, num_channels: int, image_size: int) -> None:
    """A forward pass on a blank batch at the data's size: a size the backbone cannot take fails here, named."""
    backbone.eval()
    try:
        with torch.no_grad():
            maps = backbone(torch.zeros(1, num_channels, image_size, image_size)).feature_maps
    except (RuntimeError, ValueError) as error:
        raise reference.error(f"the backbone cannot read {image_size}x{image_size} images; set --image-size to "
                              "one it can (its preprocessor's, or a multiple of its patch size)", error) from error
    finally:
        backbone.train()
    if any(0 in feature_map.shape for feature_map in maps):
        raise reference.error(f"{image_size}x{image_size} images leave an empty feature map; set a larger "
                              "--image-size")
