"""The OCI annotations (and labels) every image of the family carries."""

from __future__ import annotations

from cairn.family.spec import Family, Image
from cairn.oci.image import (
    ANN_BASE_NAME,
    ANN_CREATED,
    ANN_DESCRIPTION,
    ANN_REVISION,
    ANN_SOURCE,
    ANN_TITLE,
    rfc3339,
)


def image_annotations(family: Family, img: Image) -> tuple[tuple[str, str], ...]:
    ann = {
        ANN_CREATED: rfc3339(family.source_date_epoch),
        ANN_TITLE: img.name,
        "vnd.cairn.debian.suite": img.suite.name,
    }
    if img.description:
        ann[ANN_DESCRIPTION] = img.description
    if img.parent:
        ann[ANN_BASE_NAME] = img.parent
    if family.source:
        ann[ANN_SOURCE] = family.source
    if family.revision:
        ann[ANN_REVISION] = family.revision
    return tuple(sorted(ann.items()))


def image_labels(family: Family, img: Image) -> tuple[tuple[str, str], ...]:
    """The config's labels: the image's annotations, then the labels its spec sets."""
    return tuple({**dict(image_annotations(family, img)), **dict(img.labels)}.items())
