from .configuration_image_classifier import ImageClassifierConfig
from .image_processing_image_classifier import ImageClassifierImageProcessor
from .modeling_image_classifier import (
    ImageClassifierForImageClassification,
    ImageClassifierModel,
    ImageClassifierPreTrainedModel,
)

__all__ = [
    "ImageClassifierConfig",
    "ImageClassifierImageProcessor",
    "ImageClassifierModel",
    "ImageClassifierForImageClassification",
    "ImageClassifierPreTrainedModel",
]
