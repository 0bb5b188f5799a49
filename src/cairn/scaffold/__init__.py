"""One way to build and develop every project: `cairn init` writes it, `cairn doctor` checks it."""
