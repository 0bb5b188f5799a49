"""@@PROJECT@@: the starting point cairn init writes."""


def greeting() -> str:
    return "hello from @@PROJECT@@"
