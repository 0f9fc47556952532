"""The MLflow model's code (MLflow's "models from code"): copied into each logged model and run
when the model loads, instead of unpickling an object."""

from mlflow.models import set_model

from fer_pipeline.inference.mlflow_model import FERModel

set_model(FERModel())
