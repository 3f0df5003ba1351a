"""A GPT (decoder-only transformer language model), as a transformers model: tokens -> next-token logits.

Pre-norm blocks, one fused query/key/value projection, attention through transformers' attention interface
(`attn_implementation="sdpa"`, the default, or "eager", written out, which can return the attention weights), rotary
or learned positions, and the transformers Cache API for the key/value cache, so `generate` works as for any built-in
model. The attention mask is built once per forward, and only where it is needed: without padding the attention runs
with `is_causal=True` (a whole sequence) or with no mask at all (one new token attending to its cache). No branch of
`forward` depends on tensor values where it is traced, so `torch.export` (and so ONNX export) captures it whole.
"""

import functools

import torch
from torch import nn
from torch.nn import functional as F
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import (
    BaseModelOutputWithPast,
    CausalLMOutputWithPast,
    SequenceClassifierOutputWithPast,
)
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import can_return_tuple
from transformers.utils.deprecation import deprecate_kwarg

from .backbone import pooled_features, text_encoder_from_config
from .configuration_gpt import GPTConfig
from .loading import StrictLoadingMixin
from .validation import check_classification_labels, values_are_readable

# The outputs' field for the key/value cache: `cache` from transformers 5.24, `past_key_values` before
CACHE = "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"


def accepts_past_key_values(forward):
    """`forward` also takes the cache by its old name, `past_key_values`: with transformers' deprecation warning from
    5.24, where the name is `cache`, as its own models do; silently before, where `generate` itself passes that name."""
    if CACHE == "cache":
        return deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")(forward)

    @functools.wraps(forward)
    def renamed(self, *args, past_key_values: Cache | None = None, **kwargs):
        if past_key_values is not None and kwargs.get("cache") is None:
            kwargs["cache"] = past_key_values
        return forward(self, *args, **kwargs)

    return renamed


class GPTRMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(hidden_states, self.weight.shape, self.weight, self.eps)


def make_norm(config: GPTConfig) -> nn.Module:
    if config.norm_type == "rmsnorm":
        return GPTRMSNorm(config.hidden_size, config.layer_norm_eps)
    return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


def rope_table(config: GPTConfig) -> torch.Tensor:
    """(max_position_embeddings, head_dim / 2, 2): cos and sin of every (position, rotary frequency)."""
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))  # (head_dim / 2,)
    angles = torch.outer(torch.arange(config.max_position_embeddings, dtype=torch.float32), inv_freq)
    return torch.stack((angles.cos(), angles.sin()), dim=-1)


class GPTRotaryTable(nn.Module):
    """The precomputed RoPE table (a non-persistent buffer), looked up by position id.

    RoPE rotates each pair of neighbouring dimensions (2i, 2i + 1) of the queries and keys by the angle
    position * theta ** (-2i / head_dim). Written out in real numbers (not as a complex multiplication), which
    torch.export and ONNX take.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.register_buffer("table", rope_table(config), persistent=False)

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        # position_ids: (batch or 1, seq) -> (batch or 1, seq, 1, 1, head_dim / 2, 2) cos and sin, broadcast over
        # (q|k, heads)
        return self.table[position_ids].float()[:, :, None, None]


def apply_rotary(qk: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotates (b, t, 2, heads, head_dim) queries and keys by `rotation` (b or 1, t, 1, 1, head_dim / 2, 2), the cos
    and sin of each pair's angle: (x, y) -> (x cos - y sin, x sin + y cos)."""
    x, y = qk.float().unflatten(-1, (-1, 2)).unbind(-1)  # (b, t, 2, heads, head_dim / 2) each
    cos, sin = rotation.unbind(-1)  # (b or 1, t, 1, 1, head_dim / 2) each
    return torch.stack((x * cos - y * sin, x * sin + y * cos), dim=-1).flatten(-2).to(qk.dtype)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool = False,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(head_dim) + mask) V, written out: `attn_implementation="eager"`, whose attention weights
    can be returned. The mask is boolean (True: attend) or, with `is_causal`, the causal one of a whole sequence.
    Returns the output (b, t, heads, d) and the weights (b, heads, t, past + t), as transformers' interface does."""
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling  # (b, heads, t, past + t)
    if is_causal:  # only without a cache: t == past + t
        attention_mask = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2), weights


class GPTAttention(nn.Module):
    """Causal multi-head self-attention with a fused qkv projection and an optional key/value cache."""

    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.attention_dropout = config.attention_dropout
        self.qkv_proj = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        rotary: torch.Tensor | None,
        attn_mask: torch.Tensor | None,
        is_causal: bool,
        cache: Cache | None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output (b, t, width) and, with eager attention or `output_attentions`, the attention weights
        (b, heads, t, past + t)."""
        batch, seq, width = hidden_states.shape
        qkv = self.qkv_proj(hidden_states).view(batch, seq, 3, self.num_heads, self.head_dim)  # (b, t, 3, heads, d)
        if rotary is not None:
            qk = apply_rotary(qkv[:, :, :2], rotary)  # (b, t, 2, heads, d): queries and keys rotated together
            query, key = qk.transpose(1, 3).unbind(2)  # (b, heads, t, d) each
            value = qkv[:, :, 2].transpose(1, 2)  # (b, heads, t, d)
        else:
            query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (b, heads, t, d) each
        if cache is not None:
            key, value = cache.update(key, value, self.layer_idx)  # (b, heads, past + t, d)
        # only eager attention computes the weights: asked for them, this call runs it whatever the implementation
        implementation = "eager" if output_attentions else self.config._attn_implementation
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        attn, weights = attention(
            self, query, key, value, attn_mask, dropout=self.attention_dropout if self.training else 0.0,
            is_causal=is_causal,
        )  # (b, t, heads, d)
        return self.out_proj(attn.reshape(batch, seq, width)), weights  # (b, t, width)


def activation(name: str) -> nn.Module:
    """The ACT2FN activation `name`; GPT-2's "gelu_new" is the tanh approximation of GELU, which torch computes in
    one fused kernel (the same function, several times faster than ACT2FN's composition of elementwise ops)."""
    return nn.GELU(approximate="tanh") if name in ("gelu_new", "gelu_pytorch_tanh") else ACT2FN[name]


class GPTMLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc_in = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)
        self.fc_out = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc_out(self.act(self.fc_in(hidden_states)))  # (b, t, width)


class GPTBlock(GradientCheckpointingLayer):
    """Pre-norm block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig, layer_idx: int):
        super().__init__()
        self.attn_norm = make_norm(config)
        self.attn = GPTAttention(config, layer_idx)
        self.mlp_norm = make_norm(config)
        self.mlp = GPTMLP(config)
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        rotary: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = True,
        cache: Cache | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The new hidden states (b, t, width) and the attention weights (see GPTAttention)."""
        attended, weights = self.attn(
            self.attn_norm(hidden_states), rotary, attn_mask, is_causal, cache, output_attentions
        )
        hidden_states = hidden_states + self.dropout(attended)
        return hidden_states + self.dropout(self.mlp(self.mlp_norm(hidden_states))), weights


class GPTPreTrainedModel(StrictLoadingMixin, PreTrainedModel):
    config_class = GPTConfig
    config: GPTConfig
    base_model_prefix = "transformer"
    lora_target_modules = ("qkv_proj", "out_proj", "fc_in", "fc_out")  # what a LoRA adapter adapts (`--lora`)
    main_input_name = "input_ids"
    input_modalities = ("text",)
    supports_gradient_checkpointing = True
    _no_split_modules = ["GPTBlock"]
    _supports_sdpa = True
    _can_compile_fullgraph = True  # tests/model_tester.py compiles a training step with fullgraph=True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, (nn.LayerNorm, GPTRMSNorm)):
            init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, GPTRotaryTable):
            init.copy_(module.table, rope_table(self.config))
        # GPT-2's scaled init of the projections into the residual stream: 2 per block (attention and MLP).
        if isinstance(module, (GPTAttention, GPTMLP)):
            projection = module.out_proj if isinstance(module, GPTAttention) else module.fc_out
            init.normal_(projection.weight, mean=0.0, std=std / (2 * self.config.num_hidden_layers) ** 0.5)


def check_input_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    if not values_are_readable(input_ids) or input_ids.numel() == 0:  # on an accelerator the embedding's assert fires
        return
    low, high = (int(value) for value in torch.aminmax(input_ids))
    if high >= vocab_size or low < 0:
        bad = high if high >= vocab_size else low
        raise ValueError(
            f"input_ids contain the token id {bad} (max id {high}), but this model's vocabulary has "
            f"vocab_size={vocab_size} ids (0 .. {vocab_size - 1}): was the text encoded with another tokenizer?"
        )


def check_length(total: int, new: int, limit: int) -> None:
    if total > limit:
        raise ValueError(
            f"The sequence is {total} tokens long ({new} new + {total - new} in the cache), longer than this model's "
            f"context of max_position_embeddings={limit} tokens: truncate the prompt (e.g. tokenizer(..., "
            f"truncation=True, max_length={limit})) or generate fewer new tokens."
        )


def causal_padding_mask(attention_mask: torch.Tensor, past: int, seq: int) -> torch.Tensor:
    """(b, 1, t, past + t) boolean mask: causal, padding keys hidden. Each token always sees itself, so a
    padding query (which sees only padding) gets no all-masked row (that would give NaN)."""
    query_pos = torch.arange(past, past + seq, device=attention_mask.device)[:, None]  # (t, 1)
    key_pos = torch.arange(past + seq, device=attention_mask.device)[None, :]  # (1, past + t)
    keep = attention_mask[:, None, None, :].bool() & (key_pos <= query_pos)  # (b, 1, t, past + t)
    return keep | (key_pos == query_pos)


class GPTModel(GPTPreTrainedModel):
    """Embeddings, the blocks and the final norm: token ids -> hidden states (b, t, hidden_size)."""

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        if config.backbone_config is not None:
            raise ValueError(
                f"GPTConfig.backbone_config is a {config.backbone_config.get('model_type')} text encoder: the body of "
                "GPTForSequenceClassification is then that encoder, and there is no GPTModel (nor a GPTForCausalLM)"
            )
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        if config.position_embedding_type == "learned":
            self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        else:
            self.rotary = GPTRotaryTable(config)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(GPTBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = make_norm(config)
        self.post_init()

    @can_return_tuple
    @accepts_past_key_values
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        r"""
        attention_mask: (batch, past + seq), 1 for real tokens and 0 for padding, covering the cached tokens too.
        position_ids: (batch, seq); by default counted over the real tokens of `attention_mask` (so left padding does
            not shift positions), else past + 0, 1, 2, ...
        cache: a transformers `Cache` (e.g. `DynamicCache`) holding the keys and values of earlier tokens.
        output_attentions: return each block's attention weights (b, heads, t, past + t); computed by the eager
            attention, which runs for that call whatever `attn_implementation` is.
        output_hidden_states: return the input of each block and the final (normalised) output, each (b, t, width).
        """
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if use_cache is None:  # by default no cache where checkpointed blocks would write it twice
            checkpointing = self.training and torch.is_grad_enabled() and self.layers[0].gradient_checkpointing
            use_cache = self.config.use_cache and not checkpointing
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids and inputs_embeds.")
        if input_ids is not None:
            check_input_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.embed_tokens(input_ids)  # (b, t, width)
        batch, seq = inputs_embeds.shape[:2]
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        past = cache.get_seq_length() if cache is not None else 0
        check_length(past + seq, seq, self.config.max_position_embeddings)

        if attention_mask is not None and attention_mask.shape != (batch, past + seq):
            raise ValueError(
                f"attention_mask must have shape (batch, cached + new tokens) = {(batch, past + seq)}, "
                f"got {tuple(attention_mask.shape)}"
            )
        if attention_mask is not None and values_are_readable(attention_mask) and bool(attention_mask.all()):
            attention_mask = None  # no padding: the fast paths below need no mask (known for free on the CPU only)
        if position_ids is None:
            if attention_mask is not None:
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -seq:]  # (b, t)
            else:
                position_ids = torch.arange(past, past + seq, device=inputs_embeds.device)[None]  # (1, t)

        if attention_mask is not None:
            attn_mask, is_causal = causal_padding_mask(attention_mask, past, seq), False
        elif past == 0:  # a whole sequence (the causal mask of one token is no mask)
            attn_mask, is_causal = None, True
        elif seq == 1:  # one new token seeing all of its cache
            attn_mask, is_causal = None, False
        else:
            attn_mask, is_causal = causal_padding_mask(inputs_embeds.new_ones(batch, past + seq), past, seq), False

        hidden_states = inputs_embeds
        rotary = None
        if self.config.position_embedding_type == "learned":
            hidden_states = hidden_states + self.embed_positions(position_ids)  # (b, t, width)
        else:
            rotary = self.rotary(position_ids)  # (b or 1, t, 1, 1, head_dim / 2, 2) cos and sin
        hidden_states = self.dropout(hidden_states)
        all_hidden_states = () if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            hidden_states, weights = layer(
                hidden_states, rotary=rotary, attn_mask=attn_mask, is_causal=is_causal, cache=cache,
                output_attentions=output_attentions,
            )
            if output_attentions:
                all_attentions += (weights,)
        hidden_states = self.norm(hidden_states)  # (b, t, width)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)

        return BaseModelOutputWithPast(
            last_hidden_state=hidden_states, hidden_states=all_hidden_states, attentions=all_attentions,
            **{CACHE: cache if use_cache else None},
        )


class GPTForCausalLM(GPTPreTrainedModel, GenerationMixin):
    """The GPT with a language-modelling head (tied to the token embeddings by default)."""

    _tied_weights_keys = {"lm_head.weight": "transformer.embed_tokens.weight"}

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        self.transformer = GPTModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    @can_return_tuple
    @accepts_past_key_values
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        shift_labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        r"""
        labels: (batch, seq) the token ids themselves (the shift happens inside); -100 marks positions without loss.
        logits_to_keep: compute the logits of only the last this many positions (0: all); `generate` passes 1.
        shift_labels: (batch, seq) the labels already shifted (the label of position i is the token at i + 1), in
            place of `labels`: what transformers' loss takes where the sequence is split across devices.
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        outputs = self.transformer(
            input_ids, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
            inputs_embeds=inputs_embeds, use_cache=use_cache, return_dict=True, **kwargs,
        )
        hidden_states = outputs.last_hidden_state  # (b, t, width)
        if logits_to_keep:
            hidden_states = hidden_states[:, -logits_to_keep:]  # (b, logits_to_keep, width)
        logits = self.lm_head(hidden_states)  # (b, t, vocab)
        loss = None
        if labels is not None or shift_labels is not None:  # next-token cross-entropy
            loss = self.loss_function(
                logits, labels, self.config.vocab_size, num_items_in_batch=num_items_in_batch, shift_labels=shift_labels
            )
        return CausalLMOutputWithPast(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions,
            **{CACHE: getattr(outputs, CACHE)},
        )

    @classmethod
    def from_gpt2(cls, model) -> "GPTForCausalLM":
        """A copy of a transformers `GPT2LMHeadModel`: learned positions, layernorm, the same activation, sizes,
        token ids and weights (GPT-2's Conv1D weights are (in, out), transposed to Linear's (out, in))."""
        gpt2 = model.config
        unsupported = {
            "add_cross_attention": gpt2.add_cross_attention,
            "scale_attn_by_inverse_layer_idx": gpt2.scale_attn_by_inverse_layer_idx,
            "scale_attn_weights": not gpt2.scale_attn_weights,
        }
        for field, is_set in unsupported.items():
            if is_set:
                raise ValueError(f"from_gpt2 cannot convert a GPT-2 with {field}={getattr(gpt2, field)}.")
        config = GPTConfig(
            vocab_size=gpt2.vocab_size,
            max_position_embeddings=gpt2.n_positions,
            hidden_size=gpt2.n_embd,
            num_hidden_layers=gpt2.n_layer,
            num_attention_heads=gpt2.n_head,
            intermediate_size=gpt2.n_inner,
            hidden_act=gpt2.activation_function,
            position_embedding_type="learned",
            norm_type="layernorm",
            layer_norm_eps=gpt2.layer_norm_epsilon,
            dropout=gpt2.resid_pdrop,  # GPT-2's embd_pdrop is taken to be the same
            attention_dropout=gpt2.attn_pdrop,
            tie_word_embeddings=gpt2.tie_word_embeddings,
            initializer_range=gpt2.initializer_range,
            pad_token_id=gpt2.pad_token_id,
            bos_token_id=gpt2.bos_token_id,
            eos_token_id=gpt2.eos_token_id,
        )
        source = model.state_dict()
        state = {
            "transformer.embed_tokens.weight": source["transformer.wte.weight"],
            "transformer.embed_positions.weight": source["transformer.wpe.weight"],
            "transformer.norm.weight": source["transformer.ln_f.weight"],
            "transformer.norm.bias": source["transformer.ln_f.bias"],
            "lm_head.weight": source["lm_head.weight"],
        }
        renames = {
            "ln_1": "attn_norm", "ln_2": "mlp_norm", "attn.c_attn": "attn.qkv_proj", "attn.c_proj": "attn.out_proj",
            "mlp.c_fc": "mlp.fc_in", "mlp.c_proj": "mlp.fc_out",
        }
        for i in range(gpt2.n_layer):
            for old, new in renames.items():
                weight = source[f"transformer.h.{i}.{old}.weight"]
                state[f"transformer.layers.{i}.{new}.weight"] = weight if old.startswith("ln") else weight.t()
                state[f"transformer.layers.{i}.{new}.bias"] = source[f"transformer.h.{i}.{old}.bias"]
        converted = cls(config)
        converted.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=True)
        return converted.to(model.dtype).train(model.training)


class GPTForSequenceClassification(GPTPreTrainedModel):
    """The GPT with a linear head on the hidden state of each sequence's last real (non-padding) token; with
    `config.backbone_config`, a transformers text encoder (`self.transformer`, BERT-like) whose pooled features the
    head reads."""

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        if config.backbone_config is None:
            self.transformer = GPTModel(config)
        else:
            self.transformer = text_encoder_from_config(config.backbone_config)
        self.score = nn.Linear(self.transformer.config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    def last_token_index(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, seq: int):
        """(b,) index of the rightmost real token: from attention_mask when given, else from pad_token_id."""
        if attention_mask is not None:
            real = attention_mask.bool()
        elif input_ids is not None and self.config.pad_token_id is not None:
            real = input_ids != self.config.pad_token_id
        else:
            return seq - 1  # nothing marks padding, so there is none
        positions = torch.arange(seq, device=real.device)
        return (positions * real).argmax(-1)  # (b,), right and left padding alike

    @can_return_tuple
    @accepts_past_key_values
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        token_type_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutputWithPast:
        r"""labels: by `config.problem_type` (see `check_classification_labels`): (batch,) class ids in
        0 .. num_labels - 1, (batch, num_labels) 0/1 targets for multi-label classification, (batch,) or
        (batch, num_labels) numbers for regression.
        token_type_ids: (b, t) segment ids, for a text encoder that has them (BERT's tokenizer makes them)."""
        kwargs.pop("num_items_in_batch", None)
        if self.config.backbone_config is not None:
            encoder_inputs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
            outputs = self.transformer(
                input_ids, attention_mask=attention_mask, position_ids=position_ids, inputs_embeds=inputs_embeds,
                return_dict=True, **encoder_inputs, **kwargs,
            )
            pooled = pooled_features(outputs, attention_mask)  # (b, width)
        else:
            if token_type_ids is not None:
                raise ValueError("token_type_ids are for a text encoder that has segments (BERT-like); the GPT has "
                                 "none")
            outputs = self.transformer(
                input_ids, attention_mask=attention_mask, position_ids=position_ids, cache=cache,
                inputs_embeds=inputs_embeds, use_cache=bool(use_cache), return_dict=True, **kwargs,
            )
            hidden_states = outputs.last_hidden_state  # (b, t, width)
            batch, seq = hidden_states.shape[:2]
            if attention_mask is not None and attention_mask.shape[-1] != seq:
                attention_mask = attention_mask[:, -seq:]  # (b, t): the new tokens' part of a mask over cache + new
            last = self.last_token_index(input_ids, attention_mask, seq)
            pooled = hidden_states[torch.arange(batch, device=hidden_states.device), last]  # (b, width)
        logits = self.score(pooled)  # (b, num_labels)

        loss = None
        if labels is not None:
            check_classification_labels(labels, self.config)
            loss = self.loss_function(labels, logits, self.config)
        return SequenceClassifierOutputWithPast(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions,
            **{CACHE: getattr(outputs, CACHE, None)},
        )


__all__ = ["GPTForCausalLM", "GPTForSequenceClassification", "GPTModel", "GPTPreTrainedModel"]
