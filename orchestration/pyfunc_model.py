"""The MLflow model of a Frugal classifier ("models from code"): a pyfunc over the served files
of a model folder (model.onnx, tokenizer.json, frugal.json, compression.json), run by ONNX
Runtime (`frugal.model.runtime`): the same graph that evaluation measured and the energy model priced.
It needs no torch.

    model = mlflow.pyfunc.load_model("models:/frugal-trec-coarse@champion")
    model.predict(pd.DataFrame({"text": ["Who wrote Hamlet ?"]}))   # columns: label, score

(the registered model's name follows the data: `frugal.config.registered_model_name`)
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class FrugalClassifier(PythonModel):
    def load_context(self, context) -> None:
        from frugal.model.runtime import OnnxClassifier

        self.classifier = OnnxClassifier(Path(context.artifacts["model_dir"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        texts = (
            model_input["text"].astype(str).tolist()
            if isinstance(model_input, pd.DataFrame)
            else [str(t) for t in model_input]
        )
        probs = self.classifier.predict_proba(texts)
        return pd.DataFrame(
            {
                "label": [self.classifier.labels[i] for i in probs.argmax(1)],
                "score": probs.max(1).astype(float),
            }
        )


mlflow.models.set_model(FrugalClassifier())
