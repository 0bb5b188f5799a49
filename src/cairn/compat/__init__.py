"""Will it run there? ELF objects checked against a target root file system, statically."""
