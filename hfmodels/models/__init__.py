"""The model families. Importing this registers each with the transformers Auto classes and marks
each class for `register_for_auto_class`, so a saved folder carries `auto_map` and its code files."""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoProcessor,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageClassification,
    AutoModelForSemanticSegmentation,
    AutoModelForSequenceClassification,
)

from .autoencoder import AutoencoderConfig, AutoencoderImageProcessor, AutoencoderModel
from .fusion import FusionConfig, FusionForClassification, FusionProcessor
from .gpt import GPTConfig, GPTForCausalLM, GPTForSequenceClassification, GPTModel
from .image_classifier import (
    ImageClassifierConfig,
    ImageClassifierForImageClassification,
    ImageClassifierImageProcessor,
    ImageClassifierModel,
)
from .segmentation import UNetConfig, UNetForSemanticSegmentation, UNetImageProcessor, UNetModel
from .vae import VAEConfig, VAEImageProcessor, VAEModel


def register(config_class, models: dict, image_processor=None, processor=None) -> None:
    """Registers a family: `models` maps Auto class -> model class; `processor` is a multimodal `ProcessorMixin`."""
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    config_class.register_for_auto_class()
    for auto_class, model_class in models.items():
        auto_class.register(config_class, model_class, exist_ok=True)
        model_class.register_for_auto_class(auto_class.__name__)
    if image_processor is not None:
        AutoImageProcessor.register(config_class, image_processor_classes={"pil": image_processor}, exist_ok=True)
        image_processor.register_for_auto_class("AutoImageProcessor")
    if processor is not None:
        AutoProcessor.register(config_class, processor, exist_ok=True)
        processor.register_for_auto_class("AutoProcessor")


register(
    ImageClassifierConfig,
    {AutoModel: ImageClassifierModel, AutoModelForImageClassification: ImageClassifierForImageClassification},
    image_processor=ImageClassifierImageProcessor,
)
register(AutoencoderConfig, {AutoModel: AutoencoderModel}, image_processor=AutoencoderImageProcessor)
register(VAEConfig, {AutoModel: VAEModel}, image_processor=VAEImageProcessor)
register(
    UNetConfig,
    {AutoModel: UNetModel, AutoModelForSemanticSegmentation: UNetForSemanticSegmentation},
    image_processor=UNetImageProcessor,
)
register(
    GPTConfig,
    {AutoModel: GPTModel, AutoModelForCausalLM: GPTForCausalLM, AutoModelForSequenceClassification: GPTForSequenceClassification},
)
register(FusionConfig, {AutoModelForSequenceClassification: FusionForClassification}, processor=FusionProcessor)
