"""The `accelerate launch` entry point: the same arguments as `hfmodels train`.

    accelerate launch scripts/train.py --model image-classifier --dataset digits
    accelerate launch --multi_gpu --num_processes 2 scripts/train.py   # 2 ranks (gloo on a CPU-only machine)
"""

import json

from transformers import HfArgumentParser

from hfmodels.cli import configure_logging
from hfmodels.training import TrainingArguments, train

if __name__ == "__main__":
    configure_logging()
    (args,) = HfArgumentParser(TrainingArguments).parse_args_into_dataclasses()
    result = train(args)
    print(json.dumps(result, indent=2))
