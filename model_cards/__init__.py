"""The model card templates (Jinja), installed as the package `hfmodels.model_cards` so that every installation
carries them; `hfmodels.hub.card` reads them through `importlib.resources`."""
