"""Model cards: rendered from the Jinja templates of `hfmodels.model_cards` (the top-level `model_cards/` of the
source tree, installed with the package) and the run's records, and checked offline.

A family's template is `<family>.md.jinja` (it extends `base.md.jinja`); a family without one gets the base card.
Text between `<!-- hfmodels:keep NAME -->` and `<!-- /hfmodels:keep -->` is a person's: re-rendering keeps it.
"""

from __future__ import annotations

import inspect
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2
import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from transformers import PreTrainedConfig

from ..atomic import write_atomically
from ..data import EMBEDDED_DATASETS
from ..training.run_folder import RunFolder, read_run
from .plots import LEARNING_CURVES, plot_learning_curves

# read through the package, so an installed wheel finds them as a source checkout does
MODEL_CARD_TEMPLATES = files("hfmodels.model_cards")
KEEP_SECTION = re.compile(r"<!-- hfmodels:keep (?P<name>[\w.-]+) -->(?P<text>.*?)<!-- /hfmodels:keep -->", re.DOTALL)
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?[^)]*\)|<img\s[^>]*src=[\"']([^\"']+)[\"']")
HUB_DATASET_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
NOT_RESULT_METRICS = ("loss", "num_samples")  # in eval_results.json, but not model-index results
# training arguments that may name a local folder: the card shows it by its own name, not its absolute path
PATH_ARGUMENTS = ("dataset", "init_from", "backbone", "text_backbone", "tokenizer")
PLOT_CAPTIONS = {
    LEARNING_CURVES: "Learning curves: loss by step, and the validation metrics after each epoch.",
    "confusion_matrix.png": "Confusion matrix on the held-out split.",
}

# The Hub's task ids (huggingface.co/tasks) and license ids (huggingface.co/docs/hub/repositories-licenses).
HUB_PIPELINE_TAGS = frozenset("""
text-classification token-classification table-question-answering question-answering zero-shot-classification
translation summarization feature-extraction text-generation fill-mask sentence-similarity text-to-speech
text-to-audio automatic-speech-recognition audio-to-audio audio-classification audio-text-to-text
voice-activity-detection depth-estimation image-classification object-detection image-segmentation text-to-image
image-to-text image-to-image image-to-video unconditional-image-generation video-classification
reinforcement-learning robotics tabular-classification tabular-regression tabular-to-text table-to-text
multiple-choice text-ranking text-retrieval time-series-forecasting text-to-video image-text-to-text
image-text-to-image image-text-to-video visual-question-answering document-question-answering
zero-shot-image-classification graph-ml mask-generation zero-shot-object-detection text-to-3d image-to-3d
image-feature-extraction video-text-to-text keypoint-detection visual-document-retrieval any-to-any video-to-video
other
""".split())
HUB_LICENSES = frozenset("""
apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 bigcode-openrail-m
afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc cc0-1.0 cc-by-2.0
cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0
cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0
cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl
gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr
mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license
fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3 llama4 gemma unknown other
""".split())


class CardCheckError(ValueError):
    """The card does not tell the truth about the run, or the Hub would not accept it."""


def result_metrics(eval_results: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in eval_results.get("metrics", {}).items() if k not in NOT_RESULT_METRICS}


def card_data(run: RunFolder, repo_id: str, license: str | None) -> ModelCardData:
    """The card's metadata: what the Hub indexes and shows beside the model."""
    dataset = run.eval_results.get("dataset", {})
    name = shown_dataset_name(dataset.get("name"))
    results = [
        EvalResult(
            task_type=run.eval_results.get("task", run.family.pipeline_tag), dataset_type=name, dataset_name=name,
            dataset_config=dataset.get("config"), dataset_split=dataset.get("split"),
            dataset_revision=dataset.get("revision"), metric_type=metric, metric_value=value,
        )
        for metric, value in result_metrics(run.eval_results).items()
    ]
    return ModelCardData(
        model_name=repo_id,
        library_name="transformers",
        pipeline_tag=run.family.pipeline_tag,
        tags=["hfmodels", run.family.name, "custom_code"],
        license=license,
        datasets=[name] if is_hub_dataset(name) else None,
        metrics=list(result_metrics(run.eval_results)) or None,
        eval_results=results or None,
        **base_model_metadata(run),
    )


def base_model_metadata(run: RunFolder) -> dict[str, Any]:
    """The Hub's model tree (`base_model`, `base_model_relation`) for a run started from Hub models (one id, or a
    list for a model built of several: fusion's two encoders); a local run folder is no Hub id, so the card's body
    names it instead."""
    bases = [started for started in run.run_info.get("started_from") or [] if started["on_hub"]]
    if not bases:
        return {}
    names = [started["base_model"] for started in bases]
    return {"base_model": names[0] if len(names) == 1 else names, "base_model_relation": bases[0]["relation"]}


def shown_dataset_name(name: str | None) -> str | None:
    """The dataset's name as a card shows it: a local folder by its own name, never the absolute path it had on the
    machine that trained (which says nothing to a reader and tells where the files lived)."""
    return Path(name).name if name and Path(name).is_absolute() else name


def is_hub_dataset(name: str | None) -> bool:
    """Only Hub dataset ids belong in the `datasets` metadata; embedded data and local files are described in the
    body instead (a relative local path looks like an id, so one that exists here is not taken for one)."""
    return bool(name) and HUB_DATASET_ID.match(name) is not None and not Path(name).exists()


def declared_fields(config: PreTrainedConfig) -> dict[str, Any]:
    """The fields a config class declares (its own, not transformers' common ones) that are set."""
    fields = getattr(type(config), "__annotations__", {})
    return {name: getattr(config, name) for name in fields if getattr(config, name, None) is not None}


def config_summary(run: RunFolder) -> dict[str, Any]:
    """The architecture fields of the run's config; a nested encoder config (fusion) on one line of its own fields."""
    summary = {}
    backbone = getattr(run.config, "backbone_config", None)
    unused = getattr(type(run.config), "replaced_by_backbone", ()) if backbone else ()
    for name, value in {**declared_fields(run.config), "num_labels": getattr(run.config, "num_labels", None)}.items():
        if name in unused:
            continue
        if name == "backbone_config":
            value = f"{value['model_type']} (" + (f"feature maps {', '.join(value['out_features'])}"
                                                  if "out_features" in value else
                                                  f"hidden_size={value.get('hidden_size')}, "
                                                  f"num_hidden_layers={value.get('num_hidden_layers')}") + ")"
        if isinstance(value, PreTrainedConfig):
            value = f"{value.model_type}(" + ", ".join(f"{k}={v!r}" for k, v in declared_fields(value).items()) + ")"
        if value is not None:
            summary[name] = value
    return summary


def parameter_count(run: RunFolder) -> int:
    with torch.device("meta"):  # shapes only: no memory, no weights read
        return run.family.model_class(run.config).num_parameters()


def dataset_source(name: str | None) -> str | None:
    """What an embedded data source is, from its loader's own documentation; for a local data folder, its
    README.txt. (Whether it is synthetic or medical the card reads from the run's records, never from this text.)"""
    loader = EMBEDDED_DATASETS.get(name)
    if loader is None:
        readme = Path(name, "README.txt") if name else None
        return readme.read_text().strip() if readme is not None and readme.is_file() else None
    return " ".join(filter(None, [inspect.getmodule(loader).__doc__, loader.__doc__])).strip()


def render_card(run: RunFolder, repo_id: str, license: str | None = None) -> ModelCard:
    """The card text (metadata + body) for `run`, before kept sections are merged in."""
    data = card_data(run, repo_id, license)
    metrics = result_metrics(run.eval_results)
    optional = ("name", "split", "config", "revision", "fingerprint", "sizes", "synthetic")
    dataset = {**dict.fromkeys(optional), **run.eval_results.get("dataset", {})}
    source = dataset_source(dataset["name"])
    dataset["name"] = shown_dataset_name(dataset["name"])
    columns = [m for m in run.eval_results.get("metrics", {}) if m != "num_samples"]
    labels = list(getattr(run.config, "id2label", {}).values())
    plots = [(p.name, PLOT_CAPTIONS.get(p.name, p.stem.replace("_", " ").capitalize() + "."))
             for p in sorted(run.path.glob("*.png"))]
    context = {
        "repo_id": repo_id, "family": run.family, "license": license, "config": config_summary(run),
        "labels": labels, "num_parameters": parameter_count(run), "dataset": dataset,
        "dataset_source": source, "metrics": metrics, "columns": columns,
        "num_samples": run.eval_results.get("metrics", {}).get("num_samples", "?"),
        "best_epoch": run.eval_results.get("best_epoch"),
        "validation": run.eval_results.get("validation"),  # which rows chose the best epoch (runs since issue 23)
        "results": [("this model", run.eval_results.get("metrics", {})),
                    *run.eval_results.get("baselines", {}).items()],
        "hyperparameters": {k: shown_dataset_name(v) if k in PATH_ARGUMENTS else v for k, v in run.training_args.items()
                            if k not in ("output_dir", "push_to_hub", "hub_private")},
        "run_info": run.run_info, "plots": plots, "samples": run.samples,
        "medical": run.eval_results.get("medical", False),
        "adapter": run.run_info.get("adapter"), "auto_class": run.family.model_class._auto_class,
    }
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(read_template), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    environment.filters["number"] = format_number
    template_name = f"{run.family.name}.md.jinja"
    if read_template(template_name) is None:
        template_name = "base.md.jinja"
    body = environment.get_template(template_name).render(**context)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def read_template(name: str) -> str | None:
    """A template's text (`partials/...` included), None when there is none of that name."""
    template = MODEL_CARD_TEMPLATES.joinpath(*name.split("/"))
    return template.read_text(encoding="utf-8") if template.is_file() else None


def format_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def merge_kept_sections(new_text: str, old_text: str) -> str:
    """`new_text` with each kept section's text taken from `old_text`; kept sections the new card lacks are
    appended at the end, so nothing a person wrote is lost."""
    old = {m["name"]: m["text"] for m in KEEP_SECTION.finditer(old_text)}
    placed = set()

    def keep(match: re.Match) -> str:
        name = match["name"]
        placed.add(name)
        return f"<!-- hfmodels:keep {name} -->{old.get(name, match['text'])}<!-- /hfmodels:keep -->"

    merged = KEEP_SECTION.sub(keep, new_text)
    for name, text in old.items():
        if name not in placed:
            merged = merged.rstrip("\n") + f"\n\n<!-- hfmodels:keep {name} -->{text}<!-- /hfmodels:keep -->\n"
    return merged


def previous_card(run_dir: Path) -> ModelCard | None:
    readme = run_dir / "README.md"
    return ModelCard.load(readme, ignore_metadata_errors=True) if readme.is_file() else None


def write_card(run_dir: str | Path, repo_id: str | None = None, license: str | None = None) -> Path:
    """Renders (or re-renders) `README.md` and the plots in a run folder; returns the card's path.
    The repo id and license default to those of the card already there."""
    run = read_run(run_dir)
    old = previous_card(run.path)
    repo_id = repo_id or (old.data.model_name if old else None) or f"your-name/{run.name}"
    license = license or (old.data.license if old else None)
    plot_learning_curves(run.training_log, run.path / LEARNING_CURVES)
    text = str(render_card(run, repo_id, license))
    if old is not None:
        text = merge_kept_sections(text, (run.path / "README.md").read_text())
    readme = run.path / "README.md"
    write_atomically(readme, text)
    return readme


def check_card(run_dir: str | Path) -> list[str]:
    """What is wrong with the card in a run folder, offline: each item says what to fix. Empty: the card is fine."""
    run = read_run(run_dir)
    readme = run.path / "README.md"
    if not readme.is_file():
        return [f"{readme} is missing: render it with `hfmodels card {run.path}`"]
    try:
        card = ModelCard.load(readme)
    except Exception as error:  # noqa: BLE001  any parse failure is the finding
        return [f"{readme}: the metadata does not parse ({error}); fix the YAML between the --- lines"]
    data, problems = card.data, []
    if data.pipeline_tag not in HUB_PIPELINE_TAGS:
        problems.append(f"pipeline_tag {data.pipeline_tag!r} is not a Hub task; use one of the Hub's task ids "
                        f"(this family's is {run.family.pipeline_tag!r})")
    if data.license is not None and data.license not in HUB_LICENSES:
        problems.append(f"license {data.license!r} is not a Hub license id (e.g. apache-2.0, mit, cc-by-4.0, other)")
    expected = result_metrics(run.eval_results)
    found = {r.metric_type: r for r in data.eval_results or []}
    for metric, value in expected.items():
        if metric not in found:
            problems.append(f"model-index lacks {metric} = {value} from eval_results.json; re-render the card")
        elif found[metric].metric_value != value:
            problems.append(f"model-index says {metric} = {found[metric].metric_value}, eval_results.json says "
                            f"{value}; re-render the card")
    for metric in found.keys() - expected.keys():
        problems.append(f"model-index reports {metric}, which eval_results.json does not have; remove it")
    dataset = run.eval_results.get("dataset", {})
    name = shown_dataset_name(dataset.get("name"))
    for result in found.values():
        if (result.dataset_name, result.dataset_split) != (name, dataset.get("split")):
            problems.append(f"model-index result {result.metric_type} names dataset {result.dataset_name!r} split "
                            f"{result.dataset_split!r}; eval_results.json has {name!r} split "
                            f"{dataset.get('split')!r}")
    expected_base = base_model_metadata(run)
    for field in ("base_model", "base_model_relation"):
        if getattr(data, field, None) != expected_base.get(field):
            problems.append(f"{field} is {getattr(data, field, None)!r}, run_info.json says the run started from "
                            f"{expected_base.get(field)!r}; re-render the card")
    for match in IMAGE_LINK.finditer(card.text):
        link = match[1] or match[2]
        if not re.match(r"^[a-z]+://", link) and not (run.path / link).is_file():
            problems.append(f"README.md links the image {link}, which is not in {run.path}")
    return problems


def ensure_card_ok(run_dir: str | Path) -> None:
    problems = check_card(run_dir)
    if problems:
        raise CardCheckError(f"the model card in {run_dir} fails its check:\n  - " + "\n  - ".join(problems))
