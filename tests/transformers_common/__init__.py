"""transformers' common model tests, as its own model tests use them (tests/test_transformers_common.py).

`test_modeling_common.py` and `test_configuration_common.py` (not committed) are the files of that name in the source
distribution of the installed transformers, which `make install` puts here (scripts/transformers_tests.py; VERSION
names the version). They import three modules of transformers' repository that the source distribution does not
ship; the files of those names here are ours, standing in for them:

- exporters/test_export.py: `ExportTesterMixin` (a base of `ModelTesterMixin`): torch.export with dynamic shapes;
- generation/test_utils.py: `GenerationTesterMixin`: `generate` checks for the causal LM;
- utils/test_configuration_utils.py: `config_common_kwargs`, a non-default value of each field of PreTrainedConfig.
"""
