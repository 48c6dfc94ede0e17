"""Configuration: strict TOML schemas (pure) and the one loader that reads files."""
