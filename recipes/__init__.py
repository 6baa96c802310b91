"""Built-in training recipes (TOML files), shipped inside the `toolkit` package."""
