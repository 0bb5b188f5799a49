"""The image family: its spec (cairn.toml), the plan, the build, the lock, refreshes,
publishing, merging, and the files emitted for other engines."""
