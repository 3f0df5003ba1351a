"""The checks every model family passes (DESIGN.md, Tests). A family's test class inherits
`ModelTesterMixin` and provides a tiny config and inputs; it adds only what is its own."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, PreTrainedConfig, PreTrainedModel

from . import saved_before

# Run in a subprocess: makes `import hfmodels` fail, so only the code saved beside the weights can be used.
BLOCK_HFMODELS = textwrap.dedent(
    """
    import importlib.abc, sys
    class BlockHfmodels(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "hfmodels" or name.startswith("hfmodels."):
                raise ImportError(f"{name} is blocked: this process stands for a machine without hfmodels")
    sys.meta_path.insert(0, BlockHfmodels())
    try:
        import hfmodels
    except ImportError:
        pass
    else:
        raise SystemExit("hfmodels is still importable")
    """
)


def run_without_hfmodels(
    script: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None, python: str | Path = sys.executable
) -> subprocess.CompletedProcess:
    """Runs `script` in a fresh process of `python` (default ours) in which hfmodels cannot be imported (environment:
    `env`, default ours)."""
    env = {**(os.environ if env is None else env), "HF_MODULES_CACHE": str(cwd / "modules_cache"), "PYTHONPATH": ""}
    result = subprocess.run(
        [str(python), "-c", BLOCK_HFMODELS + textwrap.dedent(script)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def tensors_of(outputs) -> dict[str, torch.Tensor]:
    """Every tensor of a model output (hidden-state tuples flattened; a cache is no tensor), by name."""
    return saved_before.tensors_of(outputs, prefix="")


def takes_labels(model_class: type[PreTrainedModel]) -> bool:
    """Whether the class has a loss (a base model does not)."""
    return "labels" in inspect.signature(model_class.forward).parameters


def with_loss_only(test):
    """A test that needs a loss: it runs for the classes that take labels, not for base models."""
    test.with_loss_only = True
    return test


class ModelTesterMixin:
    """Subclasses set the class attributes and implement `get_config` and `get_inputs`. A test that takes
    `model_class` runs once for each class of `all_model_classes`, base models included (`pytest_generate_tests`)."""

    all_model_classes: tuple[type[PreTrainedModel], ...]  # the family's classes, its head model last
    config_class: type[PreTrainedConfig]
    # (field, bad value) pairs, each of which the config must refuse with a ValueError naming the field
    invalid_config_values: list[tuple[str, Any]] = []

    def pytest_generate_tests(self, metafunc) -> None:
        if "model_class" in metafunc.fixturenames:
            classes = metafunc.cls.all_model_classes
            if getattr(metafunc.function, "with_loss_only", False):
                classes = tuple(cls for cls in classes if takes_labels(cls))
            metafunc.parametrize("model_class", classes, ids=[cls.__name__ for cls in classes])

    @property
    def model_class(self) -> type[PreTrainedModel]:
        """The family's head model, which its own tests use."""
        return self.all_model_classes[-1]

    def get_config(self, **overrides) -> PreTrainedConfig:
        raise NotImplementedError

    def get_inputs(self, batch_size: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
        """Model inputs including labels."""
        raise NotImplementedError

    def inputs_for(self, model_class, batch_size: int = 3, seed: int = 0, labels: bool = True) -> dict:
        """`get_inputs`, without the labels for a base model or where `labels` is False."""
        inputs = self.get_inputs(batch_size, seed)
        if not (labels and takes_labels(model_class)):
            inputs.pop("labels")
        return inputs

    def make_model(self, model_class=None) -> PreTrainedModel:
        torch.manual_seed(0)
        return (model_class or self.model_class)(self.get_config()).eval()

    def outputs_of(self, model, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return tensors_of(model(**inputs))

    def loss_of(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss with labels; for a base model a function of its first output that every weight changes."""
        outputs = model(**inputs)
        return outputs.loss if "labels" in inputs else outputs[0].float().pow(2).mean()

    def assert_same_outputs(self, actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], **tolerance):
        assert sorted(actual) == sorted(expected)
        for name, value in expected.items():
            torch.testing.assert_close(actual[name], value, **(tolerance or {"rtol": 0, "atol": 0}),
                                       msg=lambda message, name=name: f"{name}: {message}")

    def test_forward_returns_loss_with_labels_and_none_without(self, model_class):
        model = self.make_model(model_class)
        inputs = self.inputs_for(model_class)
        outputs = model(**inputs)
        if not takes_labels(model_class):
            assert "loss" not in outputs, "a base model computes no loss"
            return
        assert outputs.loss is not None and outputs.loss.ndim == 0 and torch.isfinite(outputs.loss)
        assert model(**self.inputs_for(model_class, labels=False)).loss is None
        as_tuple = model(**inputs, return_dict=False)  # @can_return_tuple: the fields that are set, in order
        assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], outputs.loss)

    def test_gradients_reach_every_parameter(self, model_class):
        model = self.make_model(model_class).train()
        self.loss_of(model, self.inputs_for(model_class, batch_size=4)).backward()
        missing = [name for name, p in model.named_parameters()
                   if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
        assert not missing, f"parameters without gradient: {missing}"

    def test_init_weights_sets_every_weight_and_buffer(self, model_class):
        """In the spirit of transformers' `_config_zero_init` test: `_init_weights` (which `from_pretrained` also runs
        on weights missing from a folder, e.g. a new head) sets every parameter and buffer, leaving none to PyTorch's
        default initialisation or to what was there before; `*_range` fields near 0 give weights of mean 0 or 1."""
        model = self.make_model(model_class)
        tensors = dict(model.named_parameters()) | dict(model.named_buffers())
        for tensor in tensors.values():
            tensor.data.fill_(float("nan") if tensor.is_floating_point() else -1)
        for item in [*model.modules(), *tensors.values()]:
            item.__dict__.pop("_is_hf_initialized", None)
        model.initialize_weights()
        left = [name for name, t in tensors.items() if (t.isnan() if t.is_floating_point() else t == -1).any()]
        assert not left, f"not set by _init_weights: {left}"

        ranges = {key: 1e-10 for key in self.get_config().to_dict() if key.endswith("_range")}
        if ranges:
            torch.manual_seed(0)
            model = model_class(self.get_config(**ranges))
            for name, parameter in model.named_parameters():
                assert round(parameter.mean().item(), 6) in (0.0, 1.0), name

    def test_save_and_load_give_identical_outputs(self, model_class, tmp_path):
        model = self.make_model(model_class)
        inputs = self.inputs_for(model_class)
        model.save_pretrained(tmp_path)
        reloaded = model_class.from_pretrained(tmp_path).eval()
        self.assert_same_outputs(self.outputs_of(reloaded, inputs), self.outputs_of(model, inputs))
        config = json.loads((tmp_path / "config.json").read_text())
        assert config["model_type"] == self.config_class.model_type
        assert model_class._auto_class in config["auto_map"]
        assert not [path.name for path in tmp_path.iterdir() if path.is_symlink()]  # plain files, on any filesystem

    def test_remote_code_reload_without_hfmodels(self, model_class, tmp_path):
        model = self.make_model(model_class)
        inputs = self.inputs_for(model_class, labels=False)
        model.save_pretrained(tmp_path / "model")
        torch.save(inputs, tmp_path / "inputs.pt")
        run_without_hfmodels(
            f"""
            import torch, transformers
            model = transformers.{model_class._auto_class}.from_pretrained("model", trust_remote_code=True).eval()
            assert not type(model).__module__.startswith("hfmodels"), type(model).__module__
            assert type(model).__name__ == {model_class.__name__!r}, type(model)
            with torch.no_grad():
                outputs = model(**torch.load("inputs.pt"))
            torch.save({{name: value for name, value in outputs.items() if torch.is_tensor(value)}}, "outputs.pt")
            # strict loading travels with the code: a weight the model has no place for is an error
            from safetensors.torch import load_file, save_file
            save_file({{**load_file("model/model.safetensors"), "stray.weight": torch.zeros(1)}},
                      "model/model.safetensors")
            try:
                transformers.{model_class._auto_class}.from_pretrained("model", trust_remote_code=True)
            except ValueError as error:
                assert "stray.weight" in str(error), error
            else:
                raise SystemExit("a folder with an unexpected weight loaded")
            """,
            cwd=tmp_path,
        )
        expected = {name: value for name, value in self.outputs_of(model, inputs).items() if "." not in name}
        self.assert_same_outputs(torch.load(tmp_path / "outputs.pt"), expected)

    def test_weights_that_do_not_fit_are_errors_listing_the_keys(self, model_class, tmp_path):
        self.make_model(model_class).save_pretrained(tmp_path)
        weights_file = tmp_path / "model.safetensors"
        weights = load_file(weights_file)
        last = sorted(weights)[-1]

        def load_with(changed: dict[str, torch.Tensor], **options):
            save_file(changed, weights_file)
            return model_class.from_pretrained(tmp_path, **options)

        without_last = {key: value for key, value in weights.items() if key != last}
        with pytest.raises(ValueError, match=f"missing from the folder.*{re.escape(last)}"):
            load_with(without_last)
        load_with(without_last, strict=False)  # a new head on purpose
        with pytest.raises(ValueError, match="in the folder but not in the model.*stray.weight"):
            load_with({**weights, "stray.weight": torch.zeros(1)})
        misshaped = {**weights, last: torch.zeros(weights[last].numel() + 1)}
        with pytest.raises(ValueError, match=f"of another shape.*{re.escape(last)}"):
            load_with(misshaped)
        load_with(misshaped, ignore_mismatched_sizes=True)

        weights_file.unlink()
        torch.save(weights, tmp_path / "pytorch_model.bin")
        with pytest.raises(OSError, match="only as pickle.*use_safetensors=False"):
            model_class.from_pretrained(tmp_path)
        model_class.from_pretrained(tmp_path, use_safetensors=False)  # a pickle the caller trusts

    @with_loss_only
    def test_a_head_on_a_base_models_folder_is_new_and_named_and_the_body_must_be_whole(self, model_class, tmp_path,
                                                                                        caplog):
        """transformers' fine-tuning path: a head class from its base model's folder gets a new head, with a warning
        naming exactly its weights; a body weight missing from that folder stays an error."""
        head = self.make_model(model_class)
        if head.base_model is head:  # the family's model is its body: no head to add
            return
        head.base_model.save_pretrained(tmp_path)
        with caplog.at_level("WARNING"):
            loaded = model_class.from_pretrained(tmp_path)
        tied = model_class._tied_weights_keys or {}  # a tied head (a language model's) comes with the body
        new_weights = sorted(key for key in head.state_dict()
                             if not key.startswith(f"{head.base_model_prefix}.") and key not in tied)
        if new_weights:
            assert f"a new head for {model_class.__name__}" in caplog.text and str(new_weights) in caplog.text
        else:
            assert "a new head" not in caplog.text
        for key, tensor in head.base_model.state_dict().items():
            assert torch.equal(loaded.base_model.state_dict()[key], tensor), key
        weights = load_file(tmp_path / "model.safetensors")
        body_weight = sorted(weights)[0]
        save_file({key: value for key, value in weights.items() if key != body_weight}, tmp_path / "model.safetensors")
        with pytest.raises(ValueError, match=f"missing from the folder.*{re.escape(body_weight)}"):
            model_class.from_pretrained(tmp_path)

    def test_auto_classes_load_the_family(self, model_class, tmp_path):
        import transformers

        self.make_model(model_class).save_pretrained(tmp_path)
        assert isinstance(AutoConfig.from_pretrained(tmp_path), self.config_class)
        assert type(getattr(transformers, model_class._auto_class).from_pretrained(tmp_path)) is model_class

    def test_outputs_do_not_depend_on_batch_size(self, model_class):
        model = self.make_model(model_class)
        inputs = self.inputs_for(model_class, batch_size=5, labels=False)
        together = self.outputs_of(model, inputs)
        one_by_one = [self.outputs_of(model, {k: v[i : i + 1] for k, v in inputs.items()}) for i in range(5)]
        self.assert_same_outputs({name: torch.cat([o[name] for o in one_by_one]) for name in together}, together,
                                 rtol=1e-4, atol=1e-5)

    @with_loss_only  # a head model's graph holds its base model's
    def test_a_training_step_compiles_into_one_graph(self, model_class):
        """The model claims `_can_compile_fullgraph`: no host sync, data-dependent branch or shape in its forward (each
        would break the graph). The graph is captured and run as it is (backend "eager": no code generation)."""
        assert model_class._can_compile_fullgraph
        torch._dynamo.reset()
        model = self.make_model(model_class).train()
        compiled = torch.compile(model, fullgraph=True, backend="eager")
        loss = self.loss_of(compiled, self.inputs_for(model_class, batch_size=4))
        loss.backward()
        assert torch.isfinite(loss)
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)

    def test_config_refuses_invalid_values_naming_the_field(self):
        assert self.invalid_config_values, "list the invalid config values this family refuses"
        for field, value in self.invalid_config_values:
            with pytest.raises(ValueError, match=field):
                self.get_config(**{field: value})

    def test_config_checks_the_values_from_pretrained_sets(self, tmp_path):
        """`from_pretrained(folder, field=value)` sets its keyword arguments after the config is made: checked too."""
        self.get_config().save_pretrained(tmp_path)
        for field, value in self.invalid_config_values:
            # transformers reads two kinds itself: a num_labels that disagrees with the saved id2label gives way to it
            # (with a warning), a dict for a sub-config updates the saved sub-config
            if field == "num_labels" or isinstance(value, dict):
                continue
            with pytest.raises(ValueError, match=field):
                self.config_class.from_pretrained(tmp_path, **{field: value})

    def test_config_checks_again_when_saved(self, tmp_path):
        """`validate` runs in `save_pretrained` too: a field set to a bad value after the config was made."""
        field, value = self.invalid_config_values[0]
        config = self.get_config()
        setattr(config, field, value)
        with pytest.raises(ValueError, match=field):
            config.save_pretrained(tmp_path)

    def test_config_round_trips_through_json(self, tmp_path):
        config = self.get_config()
        config.save_pretrained(tmp_path)
        assert self.config_class.from_pretrained(tmp_path).to_dict() == config.to_dict()

    @with_loss_only
    def test_transformers_trainer_lowers_the_loss(self, model_class, tmp_path):
        """Ten `transformers.Trainer` steps on one batch of 8 rows: the loss of the last step is below the first's."""
        from transformers import Trainer
        from transformers import TrainingArguments as HfTrainingArguments

        model = self.make_model(model_class).train()
        inputs = self.get_inputs(batch_size=8)
        rows = [{k: v[i] for k, v in inputs.items()} for i in range(8)]
        args = HfTrainingArguments(
            output_dir=str(tmp_path), max_steps=10, per_device_train_batch_size=8, learning_rate=1e-2,
            report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows)
        assert trainer.train().global_step == 10
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        assert len(losses) == 10 and losses[-1] < losses[0], losses
