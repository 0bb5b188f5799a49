"""`cairn config`: the family as cairn resolves it, each value with where it came from."""

from __future__ import annotations

from cairn.family.results import ConfigImage, ConfigPackage, ConfigValue, FamilyConfig
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


def _packages(family: Family, image: Image) -> list[ConfigPackage]:
    chain = [image]
    while chain[-1].parent is not None:
        chain.append(family.image(chain[-1].parent))
    return [ConfigPackage(p, i.table) for i in reversed(chain) for p in i.added]


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
                packages=_packages(family, i),
            )
            for i in family.images
        ],
    )
