"""Publishing runs to the Hub: one-commit push, model card rendering and checks, plots.

The names below are imported from their modules when first used (PEP 562)."""

from ..lazy import lazy_exports

CARD, PUSH, RUN_FOLDER = "hfmodels.hub.card", "hfmodels.hub.push", "hfmodels.training.run_folder"
EXPORTS = {
    "CardCheckError": CARD, "check_card": CARD, "ensure_card_ok": CARD, "write_card": CARD,
    "PushError": PUSH, "push_run": PUSH, "NotAModelError": RUN_FOLDER, "read_run": RUN_FOLDER,
}
__all__ = list(EXPORTS)

__getattr__ = lazy_exports(__name__, EXPORTS)
