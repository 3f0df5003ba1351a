import pytest
import torch
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel

from hfmodels import GPTConfig, GPTForCausalLM, GPTForSequenceClassification, GPTModel

from .model_tester import ModelTesterMixin

VOCAB, CONTEXT, PAD = 64, 64, 0
TINY = {
    "vocab_size": VOCAB, "max_position_embeddings": CONTEXT, "hidden_size": 32, "num_hidden_layers": 2,
    "num_attention_heads": 4, "pad_token_id": PAD, "bos_token_id": 1, "eos_token_id": 2,
}
POSITIONS_AND_NORMS = [(p, n) for p in ("rotary", "learned") for n in ("layernorm", "rmsnorm")]


def tiny_model(model_class=GPTForCausalLM, **overrides):
    # A wider initialisation than the default so that a random model's greedy choices vary from token to token.
    torch.manual_seed(0)
    return model_class(GPTConfig(**{**TINY, "initializer_range": 0.3, **overrides})).eval()


def padded_batch(batch_size: int, seed: int, seq: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded random token ids and their attention mask; row 0 is unpadded, the others 6..12 tokens."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, VOCAB, (batch_size, seq), generator=generator)
    lengths = torch.randint(seq // 2, seq + 1, (batch_size,), generator=generator)
    lengths[0] = seq
    attention_mask = (torch.arange(seq)[None] < lengths[:, None]).long()
    return input_ids.masked_fill(attention_mask == 0, PAD), attention_mask


def left_pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    input_ids = torch.stack([torch.cat([torch.full((width - len(row),), PAD), row]) for row in rows])
    attention_mask = torch.stack([torch.cat([torch.zeros(width - len(row)), torch.ones(len(row))]) for row in rows])
    return input_ids, attention_mask.long()


def greedy(model, input_ids, attention_mask=None, new_tokens=8, **kwargs):
    """Greedy generation of exactly `new_tokens` tokens: (new token ids, their logits (batch, new_tokens, vocab))."""
    with torch.no_grad():
        out = model.generate(
            input_ids, attention_mask=attention_mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
            do_sample=False, output_logits=True, return_dict_in_generate=True, pad_token_id=PAD, **kwargs,
        )
    return out.sequences[:, input_ids.shape[1]:], torch.stack(out.logits, dim=1)


class GPTTester(ModelTesterMixin):
    config_class = GPTConfig
    invalid_config_values = [
        ("vocab_size", 0),
        ("max_position_embeddings", -1),
        ("hidden_size", 30),  # not divisible by 4 heads
        ("hidden_size", 36),  # 4 heads of 9: rotary needs an even head dimension
        ("num_hidden_layers", 0),
        ("num_attention_heads", 0),
        ("intermediate_size", 0),
        ("hidden_act", "nope"),
        ("position_embedding_type", "alibi"),
        ("rope_theta", 0),
        ("norm_type", "batchnorm"),
        ("layer_norm_eps", 0),
        ("dropout", 1.0),
        ("attention_dropout", -0.1),
        ("pad_token_id", VOCAB),
        ("eos_token_id", -1),
    ]

    def get_config(self, **overrides):
        return GPTConfig(**{**TINY, "num_labels": 3, **overrides})


class TestGPTForCausalLM(GPTTester):
    all_model_classes = (GPTModel, GPTForCausalLM)

    def get_inputs(self, batch_size=3, seed=0):
        input_ids, attention_mask = padded_batch(batch_size, seed)
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    def test_loss_is_next_token_cross_entropy_ignoring_minus_100(self):
        model = self.make_model()
        inputs = self.get_inputs()
        outputs = model(**inputs)
        labels = inputs["labels"]
        expected = torch.nn.functional.cross_entropy(
            outputs.logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1), ignore_index=-100
        )
        torch.testing.assert_close(outputs.loss, expected)
        assert outputs.logits.shape == (3, 12, VOCAB)

    def test_shift_labels_replace_labels_and_the_old_cache_name_warns(self):
        """transformers' loss API: labels already shifted (sequence parallelism splits them so) give the same loss;
        the cache's name before transformers 5.24, past_key_values, still works, with a deprecation warning."""
        model = self.make_model()
        inputs = self.get_inputs()
        labels = inputs.pop("labels")
        shifted = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=-100)
        torch.testing.assert_close(model(**inputs, shift_labels=shifted).loss, model(**inputs, labels=labels).loss)
        assert model(**inputs, shift_labels=torch.full_like(shifted, -100)).loss.isnan()  # it is not ignored
        cache = model(**inputs, use_cache=True).cache
        new = {"input_ids": inputs["input_ids"][:, -1:], "attention_mask": torch.ones(3, 13, dtype=torch.long)}
        with pytest.warns(FutureWarning, match="past_key_values"):
            old_name = model(**new, past_key_values=cache).logits
        assert old_name.shape == (3, 1, VOCAB)

    def test_word_embeddings_stay_tied_through_save_and_load(self, tmp_path):
        model = self.make_model()
        assert model.lm_head.weight is model.transformer.embed_tokens.weight
        model.save_pretrained(tmp_path)
        reloaded = GPTForCausalLM.from_pretrained(tmp_path)
        assert reloaded.lm_head.weight.data_ptr() == reloaded.transformer.embed_tokens.weight.data_ptr()
        untied = GPTForCausalLM(self.get_config(tie_word_embeddings=False))
        assert untied.lm_head.weight.data_ptr() != untied.transformer.embed_tokens.weight.data_ptr()


class TestGPTForSequenceClassification(GPTTester):
    all_model_classes = (GPTForSequenceClassification,)

    def get_inputs(self, batch_size=3, seed=0):
        input_ids, attention_mask = padded_batch(batch_size, seed)
        labels = torch.randint(0, 3, (batch_size,), generator=torch.Generator().manual_seed(seed))
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    @pytest.mark.parametrize("padding", ["right", "left", "right, found from pad_token_id"])
    @pytest.mark.parametrize("positions", ["rotary", "learned"])
    def test_pools_the_last_real_token_whatever_the_padding(self, padding, positions):
        """Also: without position_ids, positions count the real tokens only (learned positions would notice)."""
        model = tiny_model(GPTForSequenceClassification, num_labels=3, position_embedding_type=positions)
        rows = [torch.randint(3, VOCAB, (n,), generator=torch.Generator().manual_seed(n)) for n in (5, 9)]
        if padding == "left":
            input_ids, attention_mask = left_pad(rows)
        else:
            input_ids, attention_mask = padded_batch(2, seed=0, seq=9)
            input_ids[0, :5], input_ids[0, 5:], attention_mask[0] = rows[0], PAD, torch.arange(9) < 5
            input_ids[1], attention_mask[1] = rows[1], 1
        if "pad_token_id" in padding:
            attention_mask = None
        with torch.no_grad():
            batched = model(input_ids, attention_mask=attention_mask).logits
            alone = torch.cat([model(row[None]).logits for row in rows])
        torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-5)

    def test_labels_outside_num_labels_are_a_clear_error(self):
        model = self.make_model()
        inputs = {**self.get_inputs(), "labels": torch.tensor([0, 1, 3])}
        with pytest.raises(ValueError, match=r"class ids in 0 .. 2 \(config.num_labels=3\)"):
            model(**inputs)


def test_hidden_size_not_divisible_by_heads_names_both_fields():
    with pytest.raises(ValueError, match=r"hidden_size=30 .*num_attention_heads=4"):
        GPTConfig(hidden_size=30, num_attention_heads=4)


def test_intermediate_size_defaults_to_four_times_the_width():
    assert GPTConfig(hidden_size=48).intermediate_size == 192
    assert GPTConfig(hidden_size=48, intermediate_size=100).intermediate_size == 100


def test_converted_gpt2_gives_the_same_logits_and_generations():
    torch.manual_seed(0)
    gpt2_config = GPT2Config(
        n_layer=2, n_embd=32, n_head=4, vocab_size=VOCAB, n_positions=64, bos_token_id=1, eos_token_id=2,
        initializer_range=0.3,
    )
    gpt2 = GPT2LMHeadModel(gpt2_config).eval()
    ours = GPTForCausalLM.from_gpt2(gpt2).eval()
    config = ours.config
    assert (config.position_embedding_type, config.norm_type, config.hidden_act) == ("learned", "layernorm", "gelu_new")
    assert (config.max_position_embeddings, config.intermediate_size, config.eos_token_id) == (64, 128, 2)
    assert ours.lm_head.weight is ours.transformer.embed_tokens.weight
    input_ids = torch.randint(0, VOCAB, (3, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (ours(input_ids).logits - gpt2(input_ids).logits).abs().max() < 1e-5
    new_tokens, _ = greedy(ours, input_ids, new_tokens=10)
    expected, _ = greedy(gpt2, input_ids, new_tokens=10)
    assert torch.equal(new_tokens, expected)
    assert len(set(new_tokens.flatten().tolist())) > 3, "a degenerate generation would prove little"


@pytest.mark.parametrize(("positions", "norm"), POSITIONS_AND_NORMS)
def test_generation_with_and_without_the_cache_agree(positions, norm):
    model = tiny_model(position_embedding_type=positions, norm_type=norm)
    input_ids = torch.randint(3, VOCAB, (2, 7), generator=torch.Generator().manual_seed(1))
    cached, cached_logits = greedy(model, input_ids, use_cache=True)
    uncached, uncached_logits = greedy(model, input_ids, use_cache=False)
    assert torch.equal(cached, uncached)
    torch.testing.assert_close(cached_logits, uncached_logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("positions", ["rotary", "learned"])
def test_a_prompt_fed_in_chunks_through_the_cache_gives_the_full_forward(positions):
    model = tiny_model(position_embedding_type=positions)
    input_ids = torch.randint(3, VOCAB, (2, 11), generator=torch.Generator().manual_seed(2))
    cache = DynamicCache(config=model.config)
    with torch.no_grad():
        full = model(input_ids).logits
        chunks = [model(input_ids[:, a:b], cache=cache).logits for a, b in [(0, 4), (4, 9), (9, 10), (10, 11)]]
    assert cache.get_seq_length() == 11
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("positions", ["rotary", "learned"])
def test_a_left_padded_batch_continues_each_prompt_as_alone(positions):
    model = tiny_model(position_embedding_type=positions)
    rows = [torch.randint(3, VOCAB, (n,), generator=torch.Generator().manual_seed(n)) for n in (3, 8, 5)]
    input_ids, attention_mask = left_pad(rows)
    for use_cache in (True, False):
        batched, batched_logits = greedy(model, input_ids, attention_mask, use_cache=use_cache)
        for i, row in enumerate(rows):
            alone, alone_logits = greedy(model, row[None], use_cache=use_cache)
            assert torch.equal(batched[i], alone[0])
            torch.testing.assert_close(batched_logits[i], alone_logits[0], rtol=1e-4, atol=1e-5)


def test_a_sequence_longer_than_the_context_is_a_clear_error():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"70 tokens long .*max_position_embeddings=64.*truncat"):
        model(torch.randint(3, VOCAB, (1, 70)))
    with pytest.raises(ValueError, match=r"65 tokens long .*max_position_embeddings=64.*generate fewer"):
        model.generate(torch.randint(3, VOCAB, (1, 60)), max_new_tokens=10, min_new_tokens=10, do_sample=False)


@pytest.mark.parametrize("bad_id", [VOCAB, -1])
def test_token_ids_outside_the_vocabulary_are_a_clear_error(bad_id):
    model = tiny_model()
    input_ids = torch.tensor([[3, 4, bad_id, 5]])
    with pytest.raises(ValueError, match=rf"token id {bad_id} .*vocab_size={VOCAB}"):
        model(input_ids)


def test_gradient_checkpointing_gives_the_same_gradients():
    model = tiny_model(dropout=0.0).train()
    input_ids, attention_mask = padded_batch(4, seed=3)
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": input_ids}

    attention_calls = []
    model.transformer.layers[0].attn.register_forward_hook(lambda *args: attention_calls.append(1))

    def gradients():
        model.zero_grad()
        model(**inputs).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    plain = gradients()
    assert len(attention_calls) == 1
    model.activation_checkpointing_enable()
    checkpointed = gradients()
    assert len(attention_calls) == 3, "the block was not recomputed in the backward pass"
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("positions", ["rotary", "learned"])
def test_eager_attention_gives_the_sdpa_outputs(positions, monkeypatch):
    """`attn_implementation="eager"` runs the written-out attention (it is not ignored) and gives what SDPA gives:
    padded batches, a prompt fed through the cache in chunks, and greedy generation."""
    from hfmodels.models.gpt import modeling_gpt

    calls, eager = [], modeling_gpt.eager_attention_forward

    def counted_eager(*args, **kwargs):
        calls.append(1)
        return eager(*args, **kwargs)

    monkeypatch.setattr(modeling_gpt, "eager_attention_forward", counted_eager)
    sdpa = tiny_model(position_embedding_type=positions)
    assert sdpa.config._attn_implementation == "sdpa"
    input_ids, attention_mask = padded_batch(3, seed=4)
    prompt = torch.randint(3, VOCAB, (2, 9), generator=torch.Generator().manual_seed(5))

    def outputs(model):
        cache = DynamicCache(config=model.config)
        with torch.no_grad():
            padded = model(input_ids, attention_mask=attention_mask).logits
            chunks = torch.cat([model(prompt[:, a:b], cache=cache).logits for a, b in [(0, 4), (4, 5), (5, 9)]], dim=1)
        return padded, chunks, greedy(model, *left_pad([prompt[0, :4], prompt[1]]))[0]

    expected = outputs(sdpa)
    assert not calls
    eager_model = tiny_model(position_embedding_type=positions, attn_implementation="eager")
    assert eager_model.config._attn_implementation == "eager"
    padded, chunks, generated = outputs(eager_model)
    assert calls, "attn_implementation='eager' was ignored"
    torch.testing.assert_close(padded, expected[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(chunks, expected[1], rtol=1e-4, atol=1e-5)
    assert torch.equal(generated, expected[2])
    sdpa.set_attn_implementation("eager")  # switched on a built model too
    calls.clear()
    with torch.no_grad():
        switched = sdpa(input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(switched, expected[0], rtol=1e-4, atol=1e-5)
    assert calls
