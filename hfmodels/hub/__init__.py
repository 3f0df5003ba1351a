"""Publishing runs to the Hub: one-commit push, model card rendering and checks, plots."""

from .card import CardCheckError, check_card, ensure_card_ok, write_card
from .push import PushError, push_run
from ..training.run_folder import NotAModelError, read_run

__all__ = ["CardCheckError", "NotAModelError", "PushError", "check_card", "ensure_card_ok", "push_run", "read_run",
           "write_card"]
