"""hfmodels: deep-learning model families native to the Hugging Face stack.

`import hfmodels` is light: it imports neither torch nor transformers, so `hfmodels --help` answers at once. The
model classes (`hfmodels.GPTConfig`, `hfmodels.ImageClassifierForImageClassification`, ...) are attributes of
`hfmodels.models`, imported when one of them is first used (PEP 562). Importing `hfmodels.models`, which that does,
registers every family with the transformers Auto classes.
"""

from importlib import import_module

__version__ = "0.1.0"


def __getattr__(name: str):
    # the model classes are CamelCase; other names (a submodule not imported yet) stay cheap misses
    if name == "__all__" or name[:1].isupper():  # `from hfmodels import *` reads __all__
        models = import_module(".models", __name__)
        if name == "__all__":
            return ["__version__", *models.__all__]
        if name in models.__all__:
            return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__")})
