from .configuration_vae import VAEConfig
from .image_processing_vae import VAEImageProcessor
from .modeling_vae import VAEModel, VAEOutput, VAEPreTrainedModel

__all__ = ["VAEConfig", "VAEImageProcessor", "VAEModel", "VAEOutput", "VAEPreTrainedModel"]
