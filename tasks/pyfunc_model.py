"""The MLflow model of a Frugal classifier ("models from code"): a pyfunc over the saved model
folder (safetensors weights + tokenizer + frugal.json), loaded as it serves requests: a
compressed variant runs its low-bit layers on int8 kernels (`frugal.compressed`).

    model = mlflow.pyfunc.load_model("models:/frugal-intent@champion")
    model.predict(pd.DataFrame({"text": ["Who wrote Hamlet ?"]}))   # columns: label, score
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class FrugalClassifier(PythonModel):
    def load_context(self, context) -> None:
        from frugal.compressed import load_executable

        self.classifier = load_executable(Path(context.artifacts["model_dir"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from frugal.modeling import predict_proba

        texts = (
            model_input["text"].astype(str).tolist()
            if isinstance(model_input, pd.DataFrame)
            else [str(t) for t in model_input]
        )
        probs = predict_proba(self.classifier, texts)
        return pd.DataFrame(
            {
                "label": [self.classifier.labels[i] for i in probs.argmax(1)],
                "score": probs.max(1).astype(float),
            }
        )


mlflow.models.set_model(FrugalClassifier())
