from .configuration_diffusion import DiffusionConfig
from .image_processing_diffusion import DiffusionImageProcessor
from .modeling_diffusion import DiffusionForImageGeneration, DiffusionOutput, DiffusionPreTrainedModel

__all__ = ["DiffusionConfig", "DiffusionForImageGeneration", "DiffusionImageProcessor", "DiffusionOutput",
           "DiffusionPreTrainedModel"]
