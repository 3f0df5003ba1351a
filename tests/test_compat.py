"""The declared transformers and torch ranges are true for the code saved beside the weights.

`make install` builds `.venv-oldest`: the oldest transformers pyproject.toml allows (pinned in constraints-oldest.txt)
over the other packages of `.venv`, which has the newest (constraints.txt). A tiny model of every model class (those
of tests/saved_before.py) and every processor is saved by the code here, then loaded with `trust_remote_code=True`, in
a process where hfmodels cannot be imported, under each transformers: outputs (hidden states too), generated tokens,
samples, config checks and input checks must be those of the installed code.
"""

import json
import pickle
import shutil
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import numpy as np
import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version
from PIL import Image

import hfmodels
from hfmodels.families import FAMILIES

# imported for their testers (subclasses of ModelTesterMixin), which list the values each config refuses
from . import (  # noqa: F401
    test_autoencoder,
    test_diffusion,
    test_fusion,
    test_gpt,
    test_image_classifier,
    test_segmentation,
    test_vae,
)
from .conftest import REPO
from .model_tester import ModelTesterMixin, run_without_hfmodels
from .saved_before import SPECS, build, run
from .test_processors import PROCESSORS, make_fusion_processor

OLDEST = REPO / ".venv-oldest"
ENVIRONMENTS = {"newest": Path(sys.executable), "oldest": OLDEST / "bin" / "python"}


def invalid_config_values() -> dict[str, tuple[str, object]]:
    """Config class name: the first (field, bad value) its family's tester lists."""
    found, pending = {}, list(ModelTesterMixin.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending += cls.__subclasses__()
        if "config_class" in vars(cls):
            found[cls.config_class.__name__] = cls.invalid_config_values[0]
    return found


def lower_bound(requirement: str) -> Version:
    [spec] = [spec for spec in Requirement(requirement).specifier if spec.operator == ">="]
    return Version(spec.version)


def declared(name: str) -> str:
    """hfmodels' requirement on `name`, as installed from pyproject.toml (what pip enforces)."""
    [requirement] = [r for r in requires("hfmodels") if Requirement(r).name == name]
    return requirement


def python_of(environment: str) -> Path:
    python = ENVIRONMENTS[environment]
    if not python.exists():
        pytest.fail(f"{OLDEST} is missing: run `make install`, which builds it with the oldest transformers "
                    "pyproject.toml allows (constraints-oldest.txt)")
    return python


def test_the_oldest_environment_has_the_lower_bounds_of_the_ranges():
    pinned = dict(line.split("==") for line in (REPO / "constraints-oldest.txt").read_text().splitlines()
                  if line and not line.startswith("#"))
    assert Version(pinned["transformers"]) == lower_bound(declared("transformers"))
    found = subprocess.run(
        [python_of("oldest"), "-c", "import json, torch, transformers; print(json.dumps("
         "{'transformers': transformers.__version__, 'path': transformers.__file__, 'torch': torch.__version__}))"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    versions = json.loads(found.stdout)
    assert Version(versions["transformers"]) == lower_bound(declared("transformers"))
    assert Path(versions["path"]).is_relative_to(OLDEST), versions["path"]  # its own, not the one of .venv
    # the only torch that installs here (older ones are multi-GB CUDA wheels): the lower bound is the tested one
    assert Version(Version(versions["torch"]).base_version) == lower_bound(declared("torch"))


def test_the_saved_code_requires_the_declared_ranges():
    from hfmodels.models.validation import REQUIRED_VERSIONS

    def parsed(requirements):
        return {(Requirement(r).name, Requirement(r).specifier) for r in requirements}

    assert parsed(REQUIRED_VERSIONS) == parsed([declared("transformers"), declared("torch")])


def test_the_saved_code_names_the_versions_it_needs_when_loaded_with_others(tmp_path):
    build(hfmodels, "image_classifier").save_pretrained(tmp_path / "model")
    script = """
        import importlib.metadata, transformers
        installed = importlib.metadata.version  # what an older installation would report
        importlib.metadata.version = lambda name: "5.17.0" if name == "transformers" else installed(name)
        try:
            transformers.AutoConfig.from_pretrained("model", trust_remote_code=True)
        except ImportError as error:
            assert "transformers>=5.18,<6 is required" in str(error), error
            assert "found transformers==5.17.0" in str(error), error
            assert "needs it: pip install 'transformers>=5.18,<6'" in str(error), error
        else:
            raise SystemExit("the saved code loaded under transformers 5.17")
    """
    run_without_hfmodels(script, cwd=tmp_path)


def test_the_saved_models_and_processors_cover_every_family():
    model_classes = {getattr(hfmodels, model_class) for model_class, *_ in SPECS.values()}
    processor_classes = {type(processor) for processor in [*PROCESSORS.values(), make_fusion_processor()]}
    for family in FAMILIES.values():
        assert family.model_class in model_classes, family.name
        if not family.processor_class.__module__.startswith("transformers"):  # not transformers' own tokenizer
            assert family.processor_class in processor_classes, family.name


# Runs in the environment under test, hfmodels blocked: loads what `manifest.json` lists, writes `<name>.pt` with what
# the loaded code gave, and `failures.json` with the traceback of every item that failed (saved_before.py, which runs
# the models, imports nothing of hfmodels).
RELOAD = f"""
    import json, pickle, sys, traceback, torch, transformers
    sys.path.insert(0, {str(REPO / "tests")!r})
    from saved_before import run
    manifest, failures = json.load(open("manifest.json")), {{}}

    def loaded_with_its_own_code(thing):
        assert not type(thing).__module__.startswith("hfmodels"), type(thing).__module__
        return thing

    def error_of(call):
        try:
            call()
        except ValueError as error:
            return str(error)
        return None

    for item in manifest:
        name = item["name"]
        try:
            auto_class = getattr(transformers, item["auto_class"])
            if item["kind"] == "model":
                model = loaded_with_its_own_code(auto_class.from_pretrained(name, trust_remote_code=True))
                result = {{"output": run(model, item["inputs"])}}
                result["invalid_config_error"] = error_of(
                    lambda: transformers.AutoConfig.from_pretrained(f"{{name}}-invalid", trust_remote_code=True)
                )
            else:
                processor = loaded_with_its_own_code(auto_class.from_pretrained(name, trust_remote_code=True))
                calls = pickle.load(open(f"{{name}}-calls.pkl", "rb"))
                result = {{"output": dict(processor(*calls["good"][0], **calls["good"][1]))}}
                result["bad_input_error"] = error_of(lambda: processor(*calls["bad"][0], **calls["bad"][1]))
            torch.save(result, f"{{name}}.pt")
        except Exception:
            failures[name] = traceback.format_exc(limit=-4)
    json.dump(failures, open("failures.json", "w"))
"""


def processor_calls(name: str) -> dict:
    """(args, kwargs) of a good call of the processor, of one its checks refuse, and words of the refusal."""
    image = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    if name == "fusion":
        images = [Image.fromarray(image), Image.fromarray(image[::-1])]
        return {"good": ((), {"images": images, "text": ["the digit plus one", "minus"], "padding": True,
                              "return_tensors": "pt"}),
                "bad": ((), {"images": images, "text": ["one text for two images"]}), "refusal": "2 images but 1 texts"}
    masks = {"segmentation_maps": np.arange(63).reshape(9, 7) % 3} if name == "segmentation" else {}
    return {"good": ((image,), {"return_tensors": "pt", **masks}), "bad": ((np.full((4, 4), np.nan),), {}),
            "refusal": "NaN or infinite"}


def save_model(name: str, folder: Path, invalid: dict[str, tuple[str, object]]) -> tuple[dict, dict]:
    """Saves the model `name` of SPECS as `<name>`, and a copy of its folder whose config.json holds its tester's first
    invalid value as `<name>-invalid`; returns its manifest entry and what the installed code gives."""
    model_class, config_class, _, inputs = SPECS[name]
    model = build(hfmodels, name)
    model.save_pretrained(folder / name)
    field, value = invalid[config_class]
    shutil.copytree(folder / name, folder / f"{name}-invalid", ignore=shutil.ignore_patterns("*.safetensors"))
    config = json.loads((folder / name / "config.json").read_text())
    (folder / f"{name}-invalid" / "config.json").write_text(json.dumps({**config, field: value}))
    entry = {"name": name, "kind": "model", "auto_class": type(model)._auto_class, "inputs": inputs}
    return entry, {"output": run(model, inputs), "invalid_config_field": field}


def save_processor(name: str, processor, folder: Path) -> tuple[dict, dict]:
    """Saves the processor as `processor-<name>` with its calls; returns its manifest entry and what the installed code
    gives."""
    saved_as = f"processor-{name}"
    processor.save_pretrained(folder / saved_as)
    calls = processor_calls(name)
    (folder / f"{saved_as}-calls.pkl").write_bytes(pickle.dumps(calls))
    with pytest.raises(ValueError, match=calls["refusal"]):
        processor(*calls["bad"][0], **calls["bad"][1])
    expected = {"output": dict(processor(*calls["good"][0], **calls["good"][1])), "refusal": calls["refusal"]}
    auto_class = "AutoProcessor" if name == "fusion" else "AutoImageProcessor"
    return {"name": saved_as, "kind": "processor", "auto_class": auto_class}, expected


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_saved_models_and_processors_run_on_their_own_code(environment, tmp_path):
    python = python_of(environment)
    saved = [save_model(name, tmp_path, invalid_config_values()) for name in SPECS]
    saved += [save_processor(name, processor, tmp_path)
              for name, processor in {**PROCESSORS, "fusion": make_fusion_processor()}.items()]
    (tmp_path / "manifest.json").write_text(json.dumps([entry for entry, _ in saved]))
    run_without_hfmodels(RELOAD, cwd=tmp_path, python=python)
    failures = json.loads((tmp_path / "failures.json").read_text())
    assert not failures, f"under the {environment} transformers:\n" + "\n".join(
        f"--- {name}\n{error}" for name, error in failures.items()
    )
    for entry, expected in saved:
        name = entry["name"]
        got = torch.load(tmp_path / f"{name}.pt")
        if entry["kind"] == "model":  # outputs, hidden states, greedy tokens, VAE samples: bit for bit
            assert sorted(got["output"]) == sorted(expected["output"]), name
            different = [key for key, value in expected["output"].items() if not torch.equal(got["output"][key], value)]
            assert not different, f"{name}: outputs that differ: {different}"
            # a config.json that cannot work is refused naming the field, as the installed code does
            assert got["invalid_config_error"] and expected["invalid_config_field"] in got["invalid_config_error"], name
        else:
            assert set(got["output"]) == set(expected["output"]), name
            for key, value in expected["output"].items():
                where = f"{name}, {key}"
                torch.testing.assert_close(got["output"][key], value, rtol=0, atol=0, msg=lambda m: f"{where}: {m}")
            # the input checks travel with the code
            assert got["bad_input_error"] and expected["refusal"] in got["bad_input_error"], name
