from .configuration_segmentation import UNetConfig
from .image_processing_segmentation import UNetImageProcessor
from .modeling_segmentation import UNetForSemanticSegmentation, UNetModel, UNetPreTrainedModel

__all__ = ["UNetConfig", "UNetImageProcessor", "UNetModel", "UNetForSemanticSegmentation", "UNetPreTrainedModel"]
