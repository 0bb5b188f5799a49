"""The OCI image format: config/manifest/index builders, the layout store, references."""
