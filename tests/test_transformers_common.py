"""transformers' own common model tests, run on every hfmodels model class the way its model tests run them
(`tests/models/resnet`, `tests/models/gpt2`): a tiny `*ModelTester` per family, the family's test class on
transformers' `ModelTesterMixin` (+ `GenerationTesterMixin` for the causal LM) and `ConfigTester`. Class flags and
skips only where a feature does not apply, each with its reason.

The mixins are transformers' files of the installed version, which `make install` takes from its source distribution
(scripts/transformers_tests.py; tests/transformers_common/__init__.py says which parts are ours).
"""

import importlib.metadata
import json
import unittest
from pathlib import Path

import pytest
import torch

from hfmodels import (
    AutoencoderConfig,
    AutoencoderModel,
    FusionConfig,
    FusionForClassification,
    GPTConfig,
    GPTForCausalLM,
    GPTForSequenceClassification,
    GPTModel,
    ImageClassifierConfig,
    ImageClassifierForImageClassification,
    ImageClassifierModel,
    UNetConfig,
    UNetForSemanticSegmentation,
    UNetModel,
    VAEConfig,
    VAEModel,
)

COMMON = Path(__file__).parent / "transformers_common"
VERSION = importlib.metadata.version("transformers")
if (not (COMMON / "test_modeling_common.py").exists() or not (COMMON / "VERSION").exists()
        or (COMMON / "VERSION").read_text().strip() != VERSION):
    raise RuntimeError(
        f"tests/transformers_common/ lacks transformers {VERSION}'s common model tests: run `make install` (it takes "
        "them from transformers' source distribution, with network)"
    )

from .transformers_common.generation.test_utils import GenerationTesterMixin  # noqa: E402
from .transformers_common.test_configuration_common import ConfigTester  # noqa: E402
from .transformers_common.test_modeling_common import (  # noqa: E402
    ModelTesterMixin,
    floats_tensor,
    ids_tensor,
    random_attention_mask,
)

# A folder of the same class that lacks its weights: our strict loading (loading.py) refuses what this test expects to
# load with a warning (a new head from another class's folder loads, as transformers' contract says).
STRICT_LOADING = ("strict loading refuses a folder saved by the same class that lacks weights (a ValueError naming "
                  "them), where transformers warns")
NO_TOKENS = "an image model: no token embeddings or inputs_embeds"

# The name tables of transformers' Auto classes, which the common tests read to know a class's task (which labels
# `_prepare_for_class` makes, that a base model has no loss). Registering with the Auto classes (hfmodels does, at
# import) does not write them, so the test adds each class where AutoModel* registers it.
AUTO_NAME_TABLES = {
    "MODEL_MAPPING_NAMES": (ImageClassifierModel, UNetModel, AutoencoderModel, VAEModel, GPTModel),
    "MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES": (ImageClassifierForImageClassification,),
    "MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES": (UNetForSemanticSegmentation,),
    "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES": (GPTForCausalLM,),
    "MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES": (GPTForSequenceClassification, FusionForClassification),
}


@pytest.fixture(autouse=True, scope="module")
def auto_name_tables():
    from transformers.models.auto import modeling_auto

    added = [(getattr(modeling_auto, table), model_class.config_class.model_type, model_class.__name__)
             for table, classes in AUTO_NAME_TABLES.items() for model_class in classes]
    before = [(names, model_type, names.get(model_type)) for names, model_type, _ in added]
    for names, model_type, name in added:
        assert names.get(model_type, name) == name, (model_type, names[model_type])
        names[model_type] = name
    yield
    for names, model_type, previous in before:  # what hfmodels registered itself (a pipeline's task) stays
        if previous is None:
            del names[model_type]
        else:
            names[model_type] = previous


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is faster than two fighting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ImageModelTester:
    """What the image families share: (batch, channels, size, size) pixel values, in [0, 1]."""

    def __init__(self, parent, batch_size=3, image_size=16, num_channels=1, is_training=True):
        self.parent = parent
        self.batch_size = batch_size
        self.image_size = image_size
        self.num_channels = num_channels
        self.is_training = is_training

    def prepare_config_and_inputs(self):
        pixel_values = floats_tensor([self.batch_size, self.num_channels, self.image_size, self.image_size], scale=1.0)
        return self.get_config(), pixel_values

    def prepare_config_and_inputs_for_common(self):
        config, pixel_values = self.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values}


class ImageClassifierModelTester(ImageModelTester):
    hidden_sizes = [4, 8]
    num_labels = 3
    num_hidden_layers = 2  # stages
    expected_num_hidden_layers = 3  # the stem's output, then each stage's

    def get_config(self):
        return ImageClassifierConfig(num_channels=self.num_channels, image_size=self.image_size,
                                     hidden_sizes=self.hidden_sizes, depths=[1, 2], num_labels=self.num_labels)


class ImageTest(ModelTesterMixin):
    has_attentions = False  # convolutions
    test_resize_embeddings = False  # no token embeddings

    @unittest.skip(reason=STRICT_LOADING)
    def test_model_weights_reload_no_missing_tied_weights(self):
        pass

    def test_hidden_states_output(self):
        """As transformers' ResNet test: the feature maps, one per stage, asked for by argument or by config."""
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            for by_config in (False, True):
                config.output_hidden_states = by_config
                model = model_class(config).eval()
                with torch.no_grad():
                    outputs = model(**inputs_dict, **({} if by_config else {"output_hidden_states": True}))
                hidden_states = outputs.hidden_states
                self.assertEqual(len(hidden_states), self.model_tester.expected_num_hidden_layers)
                for feature_map in hidden_states:
                    self.assertEqual((feature_map.ndim, feature_map.shape[0]), (4, self.model_tester.batch_size))
            config.output_hidden_states = False

    @unittest.skip(reason=NO_TOKENS)
    def test_inputs_embeds(self):
        pass

    @unittest.skip(reason=NO_TOKENS)
    def test_model_get_set_embeddings(self):
        pass

    @unittest.skip(reason=NO_TOKENS)
    def test_enable_input_require_grads(self):
        pass


class ImageClassifierTest(ImageTest, unittest.TestCase):
    all_model_classes = (ImageClassifierModel, ImageClassifierForImageClassification)

    def setUp(self):
        self.model_tester = ImageClassifierModelTester(self)
        self.config_tester = ConfigTester(self, config_class=ImageClassifierConfig, has_text_modality=False,
                                          common_properties=["num_channels", "hidden_sizes"])

    def test_config(self):
        self.config_tester.run_common_tests()


class UNetModelTester(ImageModelTester):
    num_labels = 3
    depth = 1
    num_hidden_layers = 2 * depth  # levels below the top
    expected_num_hidden_layers = 2 * depth + 1  # each encoder level (depth + 1), then each decoder level (depth)

    def get_config(self):
        return UNetConfig(num_channels=self.num_channels, image_size=self.image_size, depth=self.depth,
                          base_channels=4, num_labels=self.num_labels)


class UNetTest(ImageTest, unittest.TestCase):
    all_model_classes = (UNetModel, UNetForSemanticSegmentation)

    def setUp(self):
        self.model_tester = UNetModelTester(self)
        self.config_tester = ConfigTester(self, config_class=UNetConfig, has_text_modality=False,
                                          common_properties=["num_channels", "depth"])

    def test_config(self):
        # check_config_arguments_init passes id2label with one label: a segmentation needs a background and a class
        tester = self.config_tester
        tester.check_config_arguments_init = lambda: self.assertRaisesRegex(
            ValueError, "num_labels=1", UNetConfig, id2label={0: "label"}
        )
        tester.run_common_tests()


class AutoencoderModelTester(ImageModelTester):
    hidden_sizes = [4, 8]
    num_hidden_layers = 2  # stages of the encoder, and of the decoder
    expected_num_hidden_layers = 4  # each stage's output, the encoder's then the decoder's
    config_class = AutoencoderConfig

    def get_config(self):
        return self.config_class(num_channels=self.num_channels, image_size=self.image_size,
                                 hidden_sizes=self.hidden_sizes, latent_dim=6)


class VAEModelTester(AutoencoderModelTester):
    config_class = VAEConfig


class AutoencoderTest(ImageTest, unittest.TestCase):
    all_model_classes = (AutoencoderModel,)

    def setUp(self):
        self.model_tester = AutoencoderModelTester(self)
        self.config_tester = ConfigTester(self, config_class=AutoencoderConfig, has_text_modality=False,
                                          common_properties=["num_channels", "latent_dim"])

    def test_config(self):
        self.config_tester.run_common_tests()


class VAETest(AutoencoderTest):
    all_model_classes = (VAEModel,)

    def setUp(self):
        self.model_tester = VAEModelTester(self)
        self.config_tester = ConfigTester(self, config_class=VAEConfig, has_text_modality=False,
                                          common_properties=["num_channels", "latent_dim"])


class GPTModelTester:
    """As transformers' GPT2ModelTester: random ids, a random (left-padded) attention mask, labels per head."""

    def __init__(self, parent, batch_size=3, seq_length=7, is_training=True, vocab_size=99, hidden_size=32,
                 num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64, num_labels=3):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = is_training
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.max_position_embeddings = max_position_embeddings
        self.num_labels = num_labels

    def get_config(self):
        return GPTConfig(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                         num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
                         max_position_embeddings=self.max_position_embeddings, num_labels=self.num_labels,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2)

    def prepare_config_and_inputs(self):
        input_ids = ids_tensor([self.batch_size, self.seq_length], self.vocab_size - 3) + 3  # no special token
        attention_mask = random_attention_mask([self.batch_size, self.seq_length]).flip(-1)  # left padding
        return self.get_config(), input_ids, attention_mask

    def prepare_config_and_inputs_for_common(self):
        config, input_ids, attention_mask = self.prepare_config_and_inputs()
        return config, {"input_ids": input_ids, "attention_mask": attention_mask}


class GPTTest(ModelTesterMixin, GenerationTesterMixin, unittest.TestCase):
    all_model_classes = (GPTModel, GPTForCausalLM, GPTForSequenceClassification)

    @unittest.skip(reason=STRICT_LOADING)
    def test_model_weights_reload_no_missing_tied_weights(self):
        pass

    def setUp(self):
        self.model_tester = GPTModelTester(self)
        self.config_tester = ConfigTester(self, config_class=GPTConfig, hidden_size=40)

    def test_config(self):
        self.config_tester.run_common_tests()


class FusionModelTester:
    """An hfmodels image classifier and an hfmodels GPT as the encoders."""

    def __init__(self, parent, batch_size=3, seq_length=6, is_training=True):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.is_training = is_training
        self.num_labels = 3

    def get_config(self):
        vision = ImageClassifierConfig(image_size=8, hidden_sizes=[4, 8], depths=[1, 1])
        text = GPTConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         max_position_embeddings=64)
        return FusionConfig(vision_config=vision, text_config=text, projection_dim=8, head_hidden_size=8,
                            num_labels=self.num_labels)

    def prepare_config_and_inputs_for_common(self):
        inputs = {
            "pixel_values": floats_tensor([self.batch_size, 1, 8, 8], scale=1.0),
            "input_ids": ids_tensor([self.batch_size, self.seq_length], 40),
            "attention_mask": random_attention_mask([self.batch_size, self.seq_length]),
        }
        return self.get_config(), inputs


class FusionTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (FusionForClassification,)
    # the test looks for the resized head among the model's first nn.Sequential's linears: the fusion model's first is
    # vision_projection, not its classifier
    test_mismatched_shapes = False

    @unittest.skip(reason=STRICT_LOADING)
    def test_model_weights_reload_no_missing_tied_weights(self):
        pass

    # The fusion output (SequenceClassifierOutput) has one `hidden_states` and one `attentions` field for two
    # encoders; neither encoder's are returned yet (which, or both under other names, is a design question left open).
    @unittest.skip(reason="FUSION_OUTPUTS: the encoders' hidden states and attentions are not returned")
    def test_attention_outputs(self):
        pass

    @unittest.skip(reason="FUSION_OUTPUTS: the encoders' hidden states and attentions are not returned")
    def test_hidden_states_output(self):
        pass

    @unittest.skip(reason="FUSION_OUTPUTS: the encoders' hidden states and attentions are not returned")
    def test_retain_grad_hidden_states_attentions(self):
        pass

    def setUp(self):
        self.model_tester = FusionModelTester(self)
        saved = json.loads(self.model_tester.get_config().to_json_string())  # the encoders' configs, as saved
        self.config_tester = ConfigTester(self, config_class=FusionConfig, has_text_modality=False,
                                          vision_config=saved["vision_config"], text_config=saved["text_config"])

    def test_config(self):
        # The encoders' configs are whole models' configs (any AutoConfig type), which name no `base_config_key` to
        # be read out of a fusion folder: `ImageClassifierConfig.from_pretrained(fusion_folder)` reads the fusion's
        # own fields, which the composite check expects to give the sub-config.
        self.config_tester.create_and_test_config_from_and_save_pretrained_composite = lambda: None
        self.config_tester.run_common_tests(can_init_without_params=False)  # the encoders have no default
