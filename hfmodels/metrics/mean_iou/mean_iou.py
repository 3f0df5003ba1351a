"""Mean intersection over union, per-class IoU and pixel accuracy of semantic segmentation masks."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = (
    "For each class, IoU = |predicted AND true| / |predicted OR true|, counted over every pixel of every image "
    "(not averaged per image). mean_iou is the mean over the classes that occur in the references or the "
    "predictions; pixel_accuracy the fraction of labelled pixels predicted right. Pixels whose reference is "
    "ignore_index count nowhere."
)

_KWARGS_DESCRIPTION = """
Args:
    predictions (array of shape (n, height, width)): predicted class ids.
    references (array of the same shape): true class ids, or ignore_index.
    num_labels (int): the number of classes; ids are 0..num_labels-1.
    ignore_index (int): reference value of unlabelled pixels (default 255).
    label_names (list of str): class names for the per-class keys (default: the class ids).
Returns:
    mean_iou (float): in [0, 1], higher is better.
    pixel_accuracy (float): in [0, 1].
    iou_<name> (float): the IoU of each class that occurs in the references or the predictions.
"""

MASKS = datasets.Sequence(datasets.Sequence(datasets.Value("int64")))


class MeanIoU(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": MASKS, "references": MASKS}),
        )

    def _compute(self, predictions, references, num_labels=None, ignore_index=255, label_names=None):
        if num_labels is None or num_labels < 1:
            raise ValueError(f"mean_iou needs num_labels >= 1 (the number of classes), got {num_labels}")
        names = [str(i) for i in range(num_labels)] if label_names is None else list(label_names)
        if len(names) != num_labels:
            raise ValueError(f"mean_iou: {len(names)} label_names for num_labels={num_labels}")
        predictions, references = np.asarray(predictions), np.asarray(references)
        if predictions.size == 0:
            raise ValueError("mean_iou needs at least one prediction, got none")
        if predictions.shape != references.shape:
            raise ValueError(
                f"mean_iou: predictions {predictions.shape} and references {references.shape} differ in shape"
            )
        labelled = references != ignore_index
        predictions, references = predictions[labelled], references[labelled]
        for name, values in (("predictions", predictions), ("references", references)):
            if values.size and (values.min() < 0 or values.max() >= num_labels):
                raise ValueError(
                    f"mean_iou: {name} must be class ids in [0, {num_labels}) or ignore_index={ignore_index}, "
                    f"got values from {values.min()} to {values.max()}"
                )
        if references.size == 0:
            raise ValueError(f"mean_iou: every reference pixel is ignore_index={ignore_index}; nothing to score")
        # confusion[true, predicted] = pixel count
        confusion = np.bincount(references * num_labels + predictions, minlength=num_labels**2)
        confusion = confusion.reshape(num_labels, num_labels)
        intersection = np.diag(confusion)
        union = confusion.sum(0) + confusion.sum(1) - intersection
        present = union > 0
        iou = intersection[present] / union[present]
        results = {"mean_iou": float(iou.mean()), "pixel_accuracy": float(intersection.sum() / confusion.sum())}
        results.update({f"iou_{names[i]}": float(value) for i, value in zip(np.flatnonzero(present), iou)})
        return results
