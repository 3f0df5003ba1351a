"""The checks every model family passes (DESIGN.md, Tests). A family's test class inherits
`ModelTesterMixin` and provides a tiny config and inputs; it adds only what is its own."""

from __future__ import annotations

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
    script: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Runs `script` in a fresh Python process in which hfmodels cannot be imported (environment: `env`, default ours)."""
    env = {**(os.environ if env is None else env), "HF_MODULES_CACHE": str(cwd / "modules_cache"), "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_HFMODELS + textwrap.dedent(script)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


class ModelTesterMixin:
    """Subclasses set the class attributes and implement `get_config` and `get_inputs`."""

    model_class: type[PreTrainedModel]
    config_class: type[PreTrainedConfig]
    auto_class_name: str  # the transformers Auto class that loads `model_class`, e.g. "AutoModelForImageClassification"
    output_name: str  # the output field compared between models, e.g. "logits"
    # (field, bad value) pairs, each of which the config must refuse with a ValueError naming the field
    invalid_config_values: list[tuple[str, Any]] = []

    def get_config(self, **overrides) -> PreTrainedConfig:
        raise NotImplementedError

    def get_inputs(self, batch_size: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
        """Model inputs including labels."""
        raise NotImplementedError

    def make_model(self) -> PreTrainedModel:
        torch.manual_seed(0)
        return self.model_class(self.get_config()).eval()

    def outputs_of(self, model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return getattr(model(**inputs), self.output_name)

    def test_forward_returns_loss_with_labels_and_none_without(self):
        model = self.make_model()
        inputs = self.get_inputs()
        outputs = model(**inputs)
        assert outputs.loss is not None and outputs.loss.ndim == 0 and torch.isfinite(outputs.loss)
        without_labels = {k: v for k, v in inputs.items() if k != "labels"}
        assert model(**without_labels).loss is None

    def test_gradients_reach_every_parameter(self):
        model = self.make_model().train()
        model(**self.get_inputs(batch_size=4)).loss.backward()
        missing = [name for name, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
        assert not missing, f"parameters without gradient: {missing}"

    def test_save_and_load_give_identical_outputs(self, tmp_path):
        model = self.make_model()
        inputs = self.get_inputs()
        model.save_pretrained(tmp_path)
        reloaded = self.model_class.from_pretrained(tmp_path).eval()
        torch.testing.assert_close(self.outputs_of(reloaded, inputs), self.outputs_of(model, inputs), rtol=0, atol=0)
        config = json.loads((tmp_path / "config.json").read_text())
        assert config["model_type"] == self.config_class.model_type
        assert self.auto_class_name in config["auto_map"]

    def test_remote_code_reload_without_hfmodels(self, tmp_path):
        model = self.make_model()
        inputs = self.get_inputs()
        model.save_pretrained(tmp_path / "model")
        torch.save({k: v for k, v in inputs.items() if k != "labels"}, tmp_path / "inputs.pt")
        run_without_hfmodels(
            f"""
            import torch, transformers
            model = transformers.{self.auto_class_name}.from_pretrained("model", trust_remote_code=True).eval()
            assert not type(model).__module__.startswith("hfmodels"), type(model).__module__
            with torch.no_grad():
                torch.save(model(**torch.load("inputs.pt")).{self.output_name}, "outputs.pt")
            # strict loading travels with the code: a weight the model has no place for is an error
            from safetensors.torch import load_file, save_file
            save_file({{**load_file("model/model.safetensors"), "stray.weight": torch.zeros(1)}}, "model/model.safetensors")
            try:
                transformers.{self.auto_class_name}.from_pretrained("model", trust_remote_code=True)
            except ValueError as error:
                assert "stray.weight" in str(error), error
            else:
                raise SystemExit("a folder with an unexpected weight loaded")
            """,
            cwd=tmp_path,
        )
        torch.testing.assert_close(torch.load(tmp_path / "outputs.pt"), self.outputs_of(model, inputs), rtol=0, atol=0)

    def test_weights_that_do_not_fit_are_errors_listing_the_keys(self, tmp_path):
        self.make_model().save_pretrained(tmp_path)
        weights_file = tmp_path / "model.safetensors"
        weights = load_file(weights_file)
        last = sorted(weights)[-1]

        def load_with(changed: dict[str, torch.Tensor], **options):
            save_file(changed, weights_file)
            return self.model_class.from_pretrained(tmp_path, **options)

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
            self.model_class.from_pretrained(tmp_path)
        self.model_class.from_pretrained(tmp_path, use_safetensors=False)  # a pickle the caller trusts

    def test_auto_classes_load_the_family(self, tmp_path):
        import transformers

        self.make_model().save_pretrained(tmp_path)
        assert isinstance(AutoConfig.from_pretrained(tmp_path), self.config_class)
        assert isinstance(getattr(transformers, self.auto_class_name).from_pretrained(tmp_path), self.model_class)

    def test_outputs_do_not_depend_on_batch_size(self):
        model = self.make_model()
        inputs = {k: v for k, v in self.get_inputs(batch_size=5).items() if k != "labels"}
        together = self.outputs_of(model, inputs)
        one_by_one = torch.cat([self.outputs_of(model, {k: v[i : i + 1] for k, v in inputs.items()}) for i in range(5)])
        torch.testing.assert_close(one_by_one, together, rtol=1e-4, atol=1e-5)

    def test_config_refuses_invalid_values_naming_the_field(self):
        assert self.invalid_config_values, "list the invalid config values this family refuses"
        for field, value in self.invalid_config_values:
            with pytest.raises(ValueError, match=field):
                self.get_config(**{field: value})

    def test_config_round_trips_through_json(self, tmp_path):
        config = self.get_config()
        config.save_pretrained(tmp_path)
        assert self.config_class.from_pretrained(tmp_path).to_dict() == config.to_dict()

    def test_transformers_trainer_trains_it(self, tmp_path):
        from transformers import Trainer
        from transformers import TrainingArguments as HfTrainingArguments

        model = self.make_model().train()
        inputs = self.get_inputs(batch_size=8)
        rows = [{k: v[i] for k, v in inputs.items()} for i in range(8)]
        before = [p.detach().clone() for p in model.parameters()]
        args = HfTrainingArguments(
            output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=4, learning_rate=1e-3,
            report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows)
        result = trainer.train()
        assert result.global_step == 3 and torch.isfinite(torch.tensor(result.training_loss))
        assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "Trainer changed no weight"
