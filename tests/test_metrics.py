"""The local metric modules against the libraries that define them (scikit-image, scikit-learn), called directly on the
same arrays, and on cases whose value is known."""

import warnings

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import accuracy_score, confusion_matrix

from hfmodels.metrics import load_metric


def noisy_images(shape: tuple[int, ...], seed: int = 0, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, references) of `shape` (n, channels, height, width): references uniform in [0, scale],
    predictions the references plus noise, clipped to the same range."""
    rng = np.random.default_rng(seed)
    references = scale * rng.random(shape)
    predictions = np.clip(references + 0.15 * scale * rng.standard_normal(shape), 0, scale)
    return predictions.astype(np.float32), references.astype(np.float32)


IMAGE_CASES = {  # name: (shape, data_range, win_size)
    "digits-like gray": ((4, 1, 8, 8), 1.0, 7),
    "rgb, 8-bit scale": ((3, 3, 12, 10), 255.0, 7),
    "small window": ((2, 3, 9, 9), 1.0, 3),
}


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_ssim_is_scikit_images_per_image_and_channel_mean(case):
    """Each image's every channel scored alone as a 2-D image by scikit-image; the module reports their mean."""
    shape, data_range, win_size = IMAGE_CASES[case]
    predictions, references = noisy_images(shape, seed=1, scale=data_range)
    per_channel = [
        structural_similarity(p.astype(np.float64), r.astype(np.float64), data_range=data_range, win_size=win_size)
        for image_p, image_r in zip(predictions, references)
        for p, r in zip(image_p, image_r)  # (height, width) each
    ]
    result = load_metric("ssim").compute(
        predictions=predictions, references=references, data_range=data_range, win_size=win_size
    )
    assert result["ssim"] == pytest.approx(np.mean(per_channel), rel=1e-12)
    assert 0 < result["ssim"] < 1


def test_ssim_of_identical_images_is_one_and_data_range_matters():
    predictions, references = noisy_images((2, 1, 8, 8))
    ssim = load_metric("ssim")
    assert ssim.compute(predictions=references, references=references)["ssim"] == pytest.approx(1.0)
    # the same pixels read on a wider scale: the constants K * data_range grow, the score rises towards 1
    default = ssim.compute(predictions=predictions, references=references)["ssim"]
    assert default < ssim.compute(predictions=predictions, references=references, data_range=255)["ssim"] < 1


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_psnr_is_scikit_images_per_image_mean(case):
    shape, data_range, _ = IMAGE_CASES[case]
    predictions, references = noisy_images(shape, seed=2, scale=data_range)
    per_image = [
        peak_signal_noise_ratio(r.astype(np.float64), p.astype(np.float64), data_range=data_range)
        for p, r in zip(predictions, references)
    ]
    result = load_metric("psnr").compute(predictions=predictions, references=references, data_range=data_range)
    assert result["psnr"] == pytest.approx(np.mean(per_image), rel=1e-12)


def test_psnr_of_known_errors():
    references = np.full((2, 3, 4, 4), 0.5, dtype=np.float32)
    psnr = load_metric("psnr")
    # a constant error of 0.1 on a range of 1: 10 * log10(1 / 0.01) = 20 dB
    assert psnr.compute(predictions=references + np.float32(0.1), references=references)["psnr"] == pytest.approx(20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "divide by zero" warning: an exact copy is simply infinitely good
        assert psnr.compute(predictions=references, references=references)["psnr"] == float("inf")


SENSITIVITY_CASES = {  # name: (predictions, references, pos_label)
    "binary": ([1, 0, 1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 1, 0, 1, 1], 1),
    "pos_label 0": ([1, 0, 1, 1, 0, 0, 1, 0], [1, 0, 0, 1, 1, 0, 1, 1], 0),
    "three classes, one positive": ([2, 0, 1, 2, 2, 1, 0, 2, 1], [2, 1, 1, 2, 0, 1, 2, 2, 0], 2),
}


@pytest.mark.parametrize("case", SENSITIVITY_CASES)
def test_sensitivity_and_specificity_are_the_confusion_matrix_rates(case):
    predictions, references, pos_label = SENSITIVITY_CASES[case]
    actual, predicted = np.array(references) == pos_label, np.array(predictions) == pos_label
    tn, fp, fn, tp = confusion_matrix(actual, predicted, labels=[False, True]).ravel()
    result = load_metric("sensitivity_specificity").compute(
        predictions=predictions, references=references, pos_label=pos_label
    )
    assert result == {"sensitivity": pytest.approx(tp / (tp + fn)), "specificity": pytest.approx(tn / (tn + fp))}


def test_sensitivity_or_specificity_without_positives_or_negatives_is_nan():
    metric = load_metric("sensitivity_specificity")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's zero-division warning is not shown: NaN says it
        no_positive = metric.compute(predictions=[0, 1, 0], references=[0, 0, 0])
        no_negative = metric.compute(predictions=[1, 0, 1], references=[1, 1, 1])
    assert np.isnan(no_positive["sensitivity"]) and no_positive["specificity"] == pytest.approx(2 / 3)
    assert no_negative["sensitivity"] == pytest.approx(2 / 3) and np.isnan(no_negative["specificity"])


@pytest.mark.parametrize("options", [{}, {"normalize": False}, {"sample_weight": [1, 2, 0.5, 1, 3, 1]},
                                     {"normalize": False, "sample_weight": [1, 2, 0.5, 1, 3, 1]}])
def test_accuracy_is_scikit_learns(options):
    predictions, references = [0, 2, 1, 1, 0, 2], [0, 1, 1, 1, 2, 2]
    expected = accuracy_score(references, predictions, **options)
    assert load_metric("accuracy").compute(predictions=predictions, references=references, **options) == {
        "accuracy": pytest.approx(expected)
    }


@pytest.mark.parametrize("name", ["ssim", "psnr", "sensitivity_specificity", "accuracy"])
def test_no_input_is_a_clear_error(name):
    with pytest.raises(ValueError, match=f"{name} needs at least one"):
        load_metric(name).compute(predictions=[], references=[])
