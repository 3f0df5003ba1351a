"""Stands in for transformers' tests/exporters/test_export.py (not in its source distribution), whose
`ExportTesterMixin` is a base of `ModelTesterMixin`: every model class, exported with `torch.export` with a dynamic
batch dimension (and a dynamic sequence dimension for token inputs), gives eager's outputs on inputs of other sizes
than those it was exported with. Classes set `test_torch_exportable = False` where that cannot hold."""

import inspect

import torch
from torch.export import Dim
from torch.utils import _pytree


def is_token_input(value: torch.Tensor) -> bool:
    """(batch, seq) integers: token ids, masks; their second dimension is dynamic too."""
    return value.ndim == 2 and not value.is_floating_point()


def resized(inputs: dict, extra_rows: int, fewer_tokens: int) -> dict:
    """The inputs with `extra_rows` more rows (copies of the first) and `fewer_tokens` fewer tokens."""
    changed = {}
    for name, value in inputs.items():
        value = torch.cat([value, value[:1].expand(extra_rows, *value.shape[1:])])
        changed[name] = value[:, : value.shape[1] - fewer_tokens] if is_token_input(value) else value
    return changed


class ExportTesterMixin:
    test_torch_exportable = True

    def test_torch_export(self):
        if not self.test_torch_exportable:
            self.skipTest(reason="test_torch_exportable is False")
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        inputs = {name: value for name, value in inputs_dict.items() if torch.is_tensor(value)}
        batch, seq = Dim("batch", min=1, max=64), Dim("seq", min=1, max=64)
        for model_class in self.all_model_classes:
            with self.subTest(model_class.__name__):
                torch.manual_seed(0)
                model = model_class(config).eval()
                options = {"use_cache": False} if "use_cache" in inspect.signature(model.forward).parameters else {}
                shapes = {name: {0: batch, 1: seq} if is_token_input(value) else {0: batch}
                          for name, value in inputs.items()}
                shapes.update(dict.fromkeys(options))
                with torch.no_grad():
                    exported = torch.export.export(model, (), {**inputs, **options}, dynamic_shapes=shapes)
                    for other in (inputs, resized(inputs, extra_rows=2, fewer_tokens=1)):
                        expected = _pytree.tree_leaves(model(**other, **options).to_tuple())
                        actual = _pytree.tree_leaves(exported.module()(**other, **options).to_tuple())
                        self.assertEqual(len(actual), len(expected))
                        for got, want in zip(actual, expected):
                            torch.testing.assert_close(got, want)
