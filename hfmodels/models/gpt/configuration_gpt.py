"""Configuration of the GPT (a decoder-only transformer language model)."""

from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

POSITION_EMBEDDING_TYPES = ("rotary", "learned")
NORM_TYPES = ("layernorm", "rmsnorm")


class GPTConfig(PreTrainedConfig):
    r"""
    A GPT: token embeddings, `num_hidden_layers` pre-norm transformer blocks (causal self-attention with
    one fused query/key/value projection, then an MLP), a final norm and a language-modelling head.

    Args:
        vocab_size: number of token ids the model knows (ids are 0 .. vocab_size - 1).
        max_position_embeddings: the context length: the most tokens (prompt and cache together) a sequence may have.
        hidden_size: width of the residual stream; a multiple of `num_attention_heads`.
        num_hidden_layers: number of transformer blocks.
        num_attention_heads: attention heads per block; each has `hidden_size // num_attention_heads` dimensions.
        intermediate_size: hidden width of the MLP; None means 4 * hidden_size.
        hidden_act: the MLP's activation, a transformers `ACT2FN` name ("gelu_new", "gelu", "silu", ...).
        position_embedding_type: "rotary" (RoPE on queries and keys) or "learned" (a table added to the embeddings,
            as in GPT-2).
        rope_theta: the RoPE base wavelength (used with rotary positions).
        norm_type: "layernorm" or "rmsnorm".
        layer_norm_eps: epsilon of the norms.
        dropout: dropout on the embeddings and on each residual branch.
        attention_dropout: dropout on the attention probabilities.
        tie_word_embeddings: the language-modelling head shares the token embedding matrix.
        initializer_range: standard deviation of the normal initialisation of weights.
        use_cache: return the key/value cache from `forward` (speeds up generation).
        pad_token_id, bos_token_id, eos_token_id: special token ids (or None), each in 0 .. vocab_size - 1.
    """

    model_type = "hfmodels-gpt"

    vocab_size: int = 4096
    max_position_embeddings: int = 256
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int | None = None
    hidden_act: str = "gelu_new"
    position_embedding_type: str = "rotary"
    rope_theta: float = 10000.0
    norm_type: str = "layernorm"
    layer_norm_eps: float = 1e-5
    dropout: float = 0.0
    attention_dropout: float = 0.0
    tie_word_embeddings: bool = True
    initializer_range: float = 0.02
    use_cache: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._validate()
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def _validate(self) -> None:
        def fail(field: str, value, allowed: str):
            raise ValueError(f"{type(self).__name__}.{field}={value!r} is invalid: {allowed}.")

        def is_positive_int(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 1

        sizes = ("vocab_size", "max_position_embeddings", "hidden_size", "num_hidden_layers", "num_attention_heads")
        for field in sizes:
            if not is_positive_int(getattr(self, field)):
                fail(field, getattr(self, field), "must be a positive integer")
        if self.hidden_size % self.num_attention_heads:
            heads = self.num_attention_heads
            fail("hidden_size", self.hidden_size, f"must be divisible by num_attention_heads={heads}")
        if self.intermediate_size is not None and not is_positive_int(self.intermediate_size):
            fail("intermediate_size", self.intermediate_size, "must be a positive integer, or None for 4 * hidden_size")
        if not isinstance(self.hidden_act, str) or self.hidden_act not in ACT2FN:
            fail("hidden_act", self.hidden_act, f"must be a transformers ACT2FN name such as {sorted(ACT2FN)}")
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:  # a tuple of strings: any value compares
            fail("position_embedding_type", self.position_embedding_type, f"must be one of {POSITION_EMBEDDING_TYPES}")
        if self.position_embedding_type == "rotary" and self.head_dim % 2:
            fail(
                "hidden_size", self.hidden_size,
                f"rotary positions need an even head dimension, hidden_size / num_attention_heads = {self.head_dim}",
            )
        if not isinstance(self.rope_theta, (int, float)) or self.rope_theta <= 0:
            fail("rope_theta", self.rope_theta, "must be a positive number")
        if self.norm_type not in NORM_TYPES:
            fail("norm_type", self.norm_type, f"must be one of {NORM_TYPES}")
        if not isinstance(self.layer_norm_eps, (int, float)) or self.layer_norm_eps <= 0:
            fail("layer_norm_eps", self.layer_norm_eps, "must be a positive number")
        for field in ("dropout", "attention_dropout"):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                fail(field, value, "must be a probability in [0, 1)")
        if not isinstance(self.initializer_range, (int, float)) or not self.initializer_range >= 0:  # NaN too
            fail("initializer_range", self.initializer_range, "must be a number >= 0")
        for field in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, field)
            ids = value if field == "eos_token_id" and isinstance(value, (list, tuple)) else [value]  # several ends
            if value is not None and (not ids or any(
                not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < self.vocab_size for i in ids
            )):
                allowed = f"token ids must be in 0 .. {self.vocab_size - 1} (vocab_size={self.vocab_size}) or None"
                fail(field, value, allowed)


__all__ = ["GPTConfig"]
