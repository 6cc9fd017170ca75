"""The docker runner: steps run inside the pipeline's box container, as Wercker ran them.

``DockerRunner`` opens a ``DockerSession`` per pipeline; ``engine_available`` is what the
``auto`` runner choice asks first.
"""

from bot.runners.docker.engine import engine_available, make_client
from bot.runners.docker.runner import DockerRunner
from bot.runners.docker.session import DockerSession

__all__ = ["DockerRunner", "DockerSession", "engine_available", "make_client"]
