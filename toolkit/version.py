"""The training stack's version (pyproject.toml's), in a module of its own so that the modules
that record it (a run's and a model file's provenance) need not import the `toolkit` package,
whose `export_model` leads back to them."""

__version__ = "0.1.0"
