"""Perplexity of a language model: exp of the mean next-token loss over every scored token."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = (
    "Perplexity = exp(total negative log-likelihood / number of scored tokens), pooled over all sequences: each "
    "token counts once, however the text was cut into sequences."
)

_KWARGS_DESCRIPTION = """
Args:
    losses (list of float): per sequence, the summed negative log-likelihood (natural log) of its scored tokens.
    counts (list of int): per sequence, how many tokens were scored.
Returns:
    perplexity (float): >= 1, lower is better.
    token_loss (float): the mean negative log-likelihood per token (its logarithm).
"""


class Perplexity(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"losses": datasets.Value("float64"), "counts": datasets.Value("int64")}),
        )

    def _compute(self, losses, counts):
        losses, counts = np.asarray(losses, dtype=np.float64), np.asarray(counts, dtype=np.int64)
        if counts.sum() <= 0:
            raise ValueError("perplexity needs at least one scored token, got none")
        if (losses < 0).any() or (counts < 0).any():
            raise ValueError("perplexity: losses and counts must be >= 0 (summed negative log-likelihoods)")
        token_loss = float(losses.sum() / counts.sum())
        return {"perplexity": float(np.exp(token_loss)), "token_loss": token_loss}
