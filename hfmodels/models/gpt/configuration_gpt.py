"""Configuration of the GPT (a decoder-only transformer language model)."""

from transformers import PreTrainedConfig
from transformers.activations import ACT2FN

from .validation import ValidatedConfig

POSITION_EMBEDDING_TYPES = ("rotary", "learned")
NORM_TYPES = ("layernorm", "rmsnorm")


class GPTConfig(ValidatedConfig, PreTrainedConfig):
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
        backbone_config: None (the GPT), or for `GPTForSequenceClassification` the dict of a transformers text
            encoder's config (BERT-like, its `model_type` and sizes), which then replaces the GPT body: its tokens
            are the encoder's (`vocab_size` is its vocabulary), its features pooled (`pooler_output`, else the mean
            over the real tokens) before the head; the GPT's own sizes are unused.
    """

    model_type = "hfmodels-gpt"
    # what a backbone_config makes unused
    replaced_by_backbone = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                            "hidden_act", "position_embedding_type", "rope_theta", "norm_type", "layer_norm_eps",
                            "dropout", "attention_dropout", "tie_word_embeddings", "initializer_range", "use_cache")

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
    backbone_config: dict | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def check_fields(self) -> None:
        for field in ("vocab_size", "max_position_embeddings", "hidden_size", "num_hidden_layers",
                      "num_attention_heads"):
            self.require(field, getattr(self, field) >= 1, "must be a positive integer")
        self.require("hidden_size", self.hidden_size % self.num_attention_heads == 0,
                     f"must be divisible by num_attention_heads={self.num_attention_heads}")
        self.require("intermediate_size", self.intermediate_size is None or self.intermediate_size >= 1,
                     "must be a positive integer, or None for 4 * hidden_size")
        self.require("hidden_act", self.hidden_act in ACT2FN,
                     f"must be a transformers ACT2FN name such as {sorted(ACT2FN)}")
        self.require("position_embedding_type", self.position_embedding_type in POSITION_EMBEDDING_TYPES,
                     f"must be one of {POSITION_EMBEDDING_TYPES}")
        self.require("hidden_size", self.position_embedding_type != "rotary" or self.head_dim % 2 == 0,
                     "rotary positions need an even head dimension, "
                     f"hidden_size / num_attention_heads = {self.head_dim}")
        self.require("rope_theta", self.rope_theta > 0, "must be a positive number")
        self.require("norm_type", self.norm_type in NORM_TYPES, f"must be one of {NORM_TYPES}")
        self.require("layer_norm_eps", self.layer_norm_eps > 0, "must be a positive number")
        for field in ("dropout", "attention_dropout"):
            self.require(field, 0 <= getattr(self, field) < 1, "must be a probability in [0, 1)")
        self.require("initializer_range", self.initializer_range >= 0, "must be a number >= 0")  # NaN fails too
        self.require("backbone_config", self.backbone_config is None or (
            isinstance(self.backbone_config, dict) and "model_type" in self.backbone_config
            and self.backbone_config.get("vocab_size", self.vocab_size) == self.vocab_size),
            f"must be None or a text encoder config's dict with its model_type, of vocab_size={self.vocab_size}")
        for field in ("pad_token_id", "bos_token_id", "eos_token_id"):
            ids = getattr(self, field)
            ids = ids if isinstance(ids, list) else [ids]  # eos_token_id may list several ends
            self.require(field, ids == [None] or (ids and all(0 <= i < self.vocab_size for i in ids)),
                         f"token ids must be in 0 .. {self.vocab_size - 1} (vocab_size={self.vocab_size}) or None")


__all__ = ["GPTConfig"]
