from .configuration_autoencoder import AutoencoderConfig
from .image_processing_autoencoder import AutoencoderImageProcessor
from .modeling_autoencoder import AutoencoderModel, AutoencoderOutput, AutoencoderPreTrainedModel

__all__ = [
    "AutoencoderConfig",
    "AutoencoderImageProcessor",
    "AutoencoderModel",
    "AutoencoderOutput",
    "AutoencoderPreTrainedModel",
]
