"""What a data source declares about itself, recorded by every run trained on it (`eval_results.json`), where the
model card and the app read it: `synthetic` (generated, not collected) and `medical` (medical data: a model of it
is not a diagnostic device).

A data folder declares them in `hfmodels_data.json`, e.g. `{"synthetic": true, "medical": true}` (`hfmodels data
make-pneumonia-demo` writes one beside its README.txt); the embedded datasets in `EMBEDDED` below. A source that
declares nothing is neither; `hfmodels train --medical` marks a model medical whatever its data declares."""

from __future__ import annotations

import json
from pathlib import Path

FACTS_FILE = "hfmodels_data.json"
FACTS = ("synthetic", "medical")
# generated; the other embedded datasets are real (digits, Python's code)
EMBEDDED = {name: {"synthetic": True} for name in ("shapes", "shapes-any-colour", "shape-names")}


def data_facts(name: str) -> dict[str, bool]:
    """`synthetic` and `medical` of the data source `name`, each false unless the source declares it."""
    facts = dict.fromkeys(FACTS, False)
    if name in EMBEDDED:
        return {**facts, **EMBEDDED[name]}
    file = Path(name) / FACTS_FILE
    if not file.is_file():
        return facts
    try:
        declared = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file}: cannot read it as JSON ({error})") from error
    if not isinstance(declared, dict):
        raise ValueError(f"{file}: expected an object such as {{\"synthetic\": true, \"medical\": false}}")
    for key, value in declared.items():
        if key not in FACTS:
            raise ValueError(f"{file}: unknown field {key!r}; known: {', '.join(FACTS)}")
        if not isinstance(value, bool):
            raise ValueError(f"{file}: {key} must be true or false, got {value!r}")
    return {**facts, **declared}
