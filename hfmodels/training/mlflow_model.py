"""The model an MLflow run logs: a pyfunc wrapper around the family's transformers pipeline (imported only
when MLflow tracking is used; mlflow is an optional dependency)."""

from mlflow.pyfunc import PythonModel


class PipelinePyfuncModel(PythonModel):
    """An MLflow pyfunc wrapper around the family's transformers pipeline.

    `predict` takes image file paths (a list, or a DataFrame whose first column holds them). A classifier
    returns one row per input with the top label and its score; other families return the pipeline's outputs.
    """

    def load_context(self, context) -> None:
        from transformers import pipeline

        from ..families import family_of_config, load_config

        path = context.artifacts["model"]
        family = family_of_config(load_config(path))
        self.pipeline = pipeline(family.pipeline_tag, model=path, trust_remote_code=False)

    def predict(self, context, model_input, params=None):
        import pandas as pd

        from ..data.images import open_image

        paths = list(model_input.iloc[:, 0]) if isinstance(model_input, pd.DataFrame) else list(model_input)
        images = [open_image(path) for path in paths]
        if self.pipeline.task != "image-classification":
            return self.pipeline(images)
        results = self.pipeline(images, top_k=1)
        return pd.DataFrame({"label": [r[0]["label"] for r in results], "score": [r[0]["score"] for r in results]})
