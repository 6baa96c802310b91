"""Model families, chosen by name (`model.family` in a recipe)."""

# Families register themselves on import: importing this package registers them all.
from toolkit.models import audio, cnn, text, video  # noqa: F401
from toolkit.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
