"""The `accelerate launch` entry point: the same arguments as `hfmodels train`.

    accelerate launch scripts/train.py --model image-classifier --dataset digits
    accelerate launch --multi_gpu --num_processes 2 scripts/train.py   # 2 ranks (gloo on a CPU-only machine)
"""

import json
import sys

from hfmodels.cli import configure_logging

if __name__ == "__main__":
    configure_logging()  # first: transformers and datasets read its settings when they are imported
    from hfmodels.hub.card import write_card
    from hfmodels.training import parse_training_arguments, train

    result = train(parse_training_arguments(sys.argv[1:], prog="scripts/train.py"),
                   after_save={"the model card": write_card})
    print(json.dumps(result, indent=2))
