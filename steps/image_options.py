"""A push step's expanded options → ``ImageConfig``: the build's OCI labels, then
``bot.pushers.image_config`` (the one image-config module both pushers use)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.pushers.image_config import config_from_options, pairs, parse_ports, words
from bot.pushers.model import ImageConfig
from steps.base import BuildFacts

__all__ = ["image_config", "pairs", "parse_ports", "words"]


def image_config(
    options: Mapping[str, str], facts: BuildFacts, secrets: Mapping[str, str]
) -> ImageConfig:
    """The image config of a push step, labelled with the build's revision, source and
    time (the ``labels`` option may override them). See ``config_from_options``."""
    labels = {
        "org.opencontainers.image.revision": facts.commit,
        "org.opencontainers.image.source": facts.source_url,
        "org.opencontainers.image.created": facts.created,
    }
    return config_from_options(options, labels, secrets)
