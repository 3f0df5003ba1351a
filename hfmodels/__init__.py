"""hfmodels: deep-learning model families native to the Hugging Face stack.

Importing the package registers every family with the transformers Auto classes.
"""

from . import models  # noqa: F401  (importing it registers the families)
from .models.autoencoder import AutoencoderConfig, AutoencoderImageProcessor, AutoencoderModel, AutoencoderOutput
from .models.fusion import FusionConfig, FusionForClassification, FusionProcessor
from .models.gpt import GPTConfig, GPTForCausalLM, GPTForSequenceClassification, GPTModel
from .models.image_classifier import (
    ImageClassifierConfig,
    ImageClassifierForImageClassification,
    ImageClassifierImageProcessor,
    ImageClassifierModel,
)
from .models.segmentation import UNetConfig, UNetForSemanticSegmentation, UNetImageProcessor, UNetModel
from .models.vae import VAEConfig, VAEImageProcessor, VAEModel, VAEOutput

__version__ = "0.1.0"

__all__ = [
    "AutoencoderConfig",
    "AutoencoderImageProcessor",
    "AutoencoderModel",
    "AutoencoderOutput",
    "FusionConfig",
    "FusionForClassification",
    "FusionProcessor",
    "GPTConfig",
    "GPTForCausalLM",
    "GPTForSequenceClassification",
    "GPTModel",
    "ImageClassifierConfig",
    "ImageClassifierForImageClassification",
    "ImageClassifierImageProcessor",
    "ImageClassifierModel",
    "UNetConfig",
    "UNetForSemanticSegmentation",
    "UNetImageProcessor",
    "UNetModel",
    "VAEConfig",
    "VAEImageProcessor",
    "VAEModel",
    "VAEOutput",
]
