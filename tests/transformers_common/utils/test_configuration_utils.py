"""Stands in for transformers' tests/utils/test_configuration_utils.py (not in its source distribution): what
`ConfigTester.check_config_arguments_init` passes to a config, a value other than the default for each field of
transformers 5's `PreTrainedConfig`, and checks it was kept."""

config_common_kwargs = {
    "return_dict": False,
    "output_hidden_states": True,
    "output_attentions": True,
    "dtype": "float16",
    "chunk_size_feed_forward": 5,
    "architectures": ["BertModel"],
    "id2label": {0: "label"},
    "label2id": {"label": 0},
    "problem_type": "regression",
}
