"""`cairn config`: the family as cairn resolves it, each value with where it came from."""

from __future__ import annotations

from cairn.family.resolve import repositories_of
from cairn.family.results import ConfigImage, ConfigItem, ConfigValue, FamilyConfig
from cairn.family.spec import Family, Image


def _values(image: Image) -> list[ConfigValue]:
    origins = dict(image.origins)
    plain: dict[str, str | list[str] | None] = {
        "description": image.description,
        "suite": image.suite.name,
        "platforms": [p.name for p in image.platforms],
        "mirror": image.mirror,
        "security_mirror": image.security_mirror,
        "variant": image.variant,
        "profile": image.profile.name,
        "locales": list(image.locales),
        "tags": list(image.tags),
        "cmd": list(image.cmd),
        "entrypoint": list(image.entrypoint) if image.entrypoint is not None else None,
        "user": image.user,
        "workdir": image.workdir,
    }
    out = [ConfigValue(key, value, origins[key]) for key, value in plain.items()]
    out += [ConfigValue(f"env.{k}", v, origins[f"env.{k}"]) for k, v in image.env]
    out += [ConfigValue(f"labels.{k}", v, origins[f"labels.{k}"]) for k, v in image.labels]
    return out


def _chain(family: Family, image: Image) -> list[Image]:
    """The image and its ancestors, the root first."""
    chain = [image]
    while chain[-1].parent is not None:
        chain.append(family.image(chain[-1].parent))
    return chain[::-1]


def _listed(family: Family, image: Image) -> dict[str, list[ConfigItem]]:
    """The lists that add up along the chain, each entry with the table that adds it."""
    chain = _chain(family, image)
    tables = [(i, family.tables[i.name]) for i in chain]
    return {
        "packages": [ConfigItem(p, i.table) for i in chain for p in i.added],
        "repositories": [
            ConfigItem(r.line, i.table) for i, t in tables for r in repositories_of(t, i.mirror)
        ],
        "exclude": [ConfigItem(g, i.table) for i, t in tables for g in t.exclude],
    }


def describe(family: Family) -> FamilyConfig:
    return FamilyConfig(
        spec=str(family.path),
        output=family.output,
        source_date_epoch=family.source_date_epoch,
        images=[
            ConfigImage(
                name=i.name,
                parent=i.parent,
                table=i.table,
                kind="dockerfile" if i.dockerfile is not None else "packages",
                dockerfile=str(i.dockerfile) if i.dockerfile is not None else None,
                values=_values(i),
                **_listed(family, i),
            )
            for i in family.images
        ],
    )
