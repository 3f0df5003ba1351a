"""Stands in for transformers' tests/generation/test_utils.py (not in its source distribution): `generate` checks that
a causal LM's tester class inherits (`test_generation_tester_mixin_inheritance` of `ModelTesterMixin` asks for it).
It runs over `all_generative_model_classes` on the inputs of `model_tester.prepare_config_and_inputs_for_common()`
(`input_ids` and `attention_mask`, left-padded where padded)."""

import torch


class GenerationTesterMixin:
    max_new_tokens = 4

    def generation_inputs(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        return config, {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}

    def generate(self, model, inputs, **kwargs):
        options = {"max_new_tokens": self.max_new_tokens, "min_new_tokens": self.max_new_tokens, "do_sample": False}
        with torch.no_grad():
            return model.generate(**inputs, **{**options, **kwargs})

    def models(self, **config_changes):
        if not self.all_generative_model_classes:
            self.skipTest(reason="no model class of this tester can generate")
        config, inputs = self.generation_inputs()
        for name, value in config_changes.items():
            setattr(config, name, value)
        for model_class in self.all_generative_model_classes:
            torch.manual_seed(0)
            yield model_class(config).eval(), inputs

    def test_greedy_generate_is_the_same_with_and_without_cache(self):
        for model, inputs in self.models():
            with_cache = self.generate(model, inputs, use_cache=True)
            self.assertEqual(with_cache.shape, (inputs["input_ids"].shape[0], inputs["input_ids"].shape[1] + 4))
            torch.testing.assert_close(with_cache, self.generate(model, inputs, use_cache=False))

    def test_generate_dict_outputs(self):
        """return_dict_in_generate: scores, logits, and per step the attentions and hidden states of every layer."""
        for model, inputs in self.models(_attn_implementation="eager"):
            batch, prompt = inputs["input_ids"].shape
            layers = model.config.num_hidden_layers
            out = self.generate(model, inputs, return_dict_in_generate=True, output_scores=True, output_logits=True,
                                output_attentions=True, output_hidden_states=True)
            self.assertEqual(len(out.scores), self.max_new_tokens)
            self.assertEqual(len(out.logits), self.max_new_tokens)
            for step, (attentions, hidden_states) in enumerate(zip(out.attentions, out.hidden_states)):
                new, seen = (prompt, prompt) if step == 0 else (1, prompt + step)
                self.assertEqual(len(attentions), layers)
                self.assertEqual(len(hidden_states), layers + 1)
                heads = model.config.num_attention_heads
                self.assertEqual([a.shape for a in attentions], [(batch, heads, new, seen)] * layers)
                width = model.config.hidden_size
                self.assertEqual([h.shape for h in hidden_states], [(batch, new, width)] * (layers + 1))

    def test_assisted_decoding_matches_greedy(self):
        """An assistant model (the model itself) and prompt lookup only speed greedy search up (one row: assisted
        decoding takes no batch)."""
        for model, inputs in self.models():
            inputs = {name: value[:1] for name, value in inputs.items()}
            greedy = self.generate(model, inputs)
            torch.testing.assert_close(self.generate(model, inputs, assistant_model=model), greedy)
            torch.testing.assert_close(self.generate(model, inputs, prompt_lookup_num_tokens=2), greedy)

    def test_left_padding_does_not_change_the_next_token(self):
        for model, inputs in self.models():
            padded = {"input_ids": torch.nn.functional.pad(inputs["input_ids"], (3, 0), value=0),
                      "attention_mask": torch.nn.functional.pad(inputs["attention_mask"], (3, 0), value=0)}
            with torch.no_grad():
                expected = model(**inputs).logits[:, -1]
                torch.testing.assert_close(model(**padded).logits[:, -1], expected, rtol=1e-4, atol=1e-5)

    def test_generate_continues_from_a_returned_cache(self):
        for model, inputs in self.models():
            whole = self.generate(model, inputs, max_new_tokens=6, min_new_tokens=6)
            first = self.generate(model, inputs, max_new_tokens=3, min_new_tokens=3, return_dict_in_generate=True)
            name = "cache" if "cache" in first else "past_key_values"  # its name before transformers 5.24
            mask = torch.nn.functional.pad(inputs["attention_mask"], (0, 3), value=1)
            rest = self.generate(model, {"input_ids": first.sequences, "attention_mask": mask, name: first[name]},
                                 max_new_tokens=3, min_new_tokens=3)
            torch.testing.assert_close(rest, whole)

    def test_beam_search_and_sampling(self):
        for model, inputs in self.models():
            batch = inputs["input_ids"].shape[0]
            beams = self.generate(model, inputs, num_beams=2, num_return_sequences=2)
            self.assertEqual(beams.shape[0], 2 * batch)
            torch.manual_seed(1)
            sampled = self.generate(model, inputs, do_sample=True, top_k=5)
            torch.manual_seed(1)
            torch.testing.assert_close(self.generate(model, inputs, do_sample=True, top_k=5), sampled)
