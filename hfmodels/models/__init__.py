"""The model code, one self-contained folder per model type.

Importing this package registers each model type with the transformers Auto classes (the one `register` call below
is the only place that says which Auto class loads which model class) and marks its classes for
`register_for_auto_class`, so a saved folder carries `auto_map` and its code files. `hfmodels.<Name>` and
`hfmodels.models.<Name>` are the folders' public classes (each folder's `__all__`)."""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageClassification,
    AutoModelForSemanticSegmentation,
    AutoModelForSequenceClassification,
    AutoProcessor,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES

from . import autoencoder, diffusion, fusion, gpt, image_classifier, segmentation, vae

MODEL_PACKAGES = (autoencoder, diffusion, fusion, gpt, image_classifier, segmentation, vae)


def register(config_class, models: dict, image_processor=None, processor=None) -> None:
    """Registers a model type: `models` maps Auto class -> model class; `processor` is a multimodal `ProcessorMixin`."""
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
    image_classifier.ImageClassifierConfig,
    {AutoModel: image_classifier.ImageClassifierModel,
     AutoModelForImageClassification: image_classifier.ImageClassifierForImageClassification},
    image_processor=image_classifier.ImageClassifierImageProcessor,
)
register(autoencoder.AutoencoderConfig, {AutoModel: autoencoder.AutoencoderModel},
         image_processor=autoencoder.AutoencoderImageProcessor)
register(vae.VAEConfig, {AutoModel: vae.VAEModel}, image_processor=vae.VAEImageProcessor)
register(diffusion.DiffusionConfig, {AutoModel: diffusion.DiffusionForImageGeneration},
         image_processor=diffusion.DiffusionImageProcessor)
register(
    segmentation.UNetConfig,
    {AutoModel: segmentation.UNetModel, AutoModelForSemanticSegmentation: segmentation.UNetForSemanticSegmentation},
    image_processor=segmentation.UNetImageProcessor,
)
# The image-segmentation pipeline checks the model against transformers' own table of names, which `register` does not
# reach: without this it logs that the U-Net "is not supported" (and then runs it).
MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES[segmentation.UNetConfig.model_type] = "UNetForSemanticSegmentation"
register(
    gpt.GPTConfig,
    {AutoModel: gpt.GPTModel, AutoModelForCausalLM: gpt.GPTForCausalLM,
     AutoModelForSequenceClassification: gpt.GPTForSequenceClassification},
)
register(fusion.FusionConfig, {AutoModelForSequenceClassification: fusion.FusionForClassification},
         processor=fusion.FusionProcessor)

# Every folder's public classes, as attributes of this package.
__all__ = sorted(name for package in MODEL_PACKAGES for name in package.__all__)
globals().update({name: getattr(package, name) for package in MODEL_PACKAGES for name in package.__all__})
