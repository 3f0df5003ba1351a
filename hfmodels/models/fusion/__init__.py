from .configuration_fusion import FusionConfig
from .modeling_fusion import FusionForClassification, FusionPreTrainedModel
from .processing_fusion import FusionProcessor

__all__ = ["FusionConfig", "FusionForClassification", "FusionPreTrainedModel", "FusionProcessor"]
