"""Assembles and pushes an image over the registry HTTP API: no daemon, no privileges.

Order of work for one push: ping the target (and the base's registry); fetch the base's
manifest and config with the base's own credentials; in a small thread pool, make every
base layer exist in the target (HEAD, cross-repository mount on the same registry, else a
streamed GET → upload) and build + upload one layer per ``LayerDir``; then the config blob;
then the manifest once per tag. A push is done only when the registry echoed the manifest
digest we computed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from io import BytesIO
from pathlib import Path

import requests

from bot.engine import CredentialResolver
from bot.errors import RegistryError, RegistryUnavailable
from bot.logs import Log
from bot.masking import Masker
from bot.pushers.model import (
    ImageRef,
    ImageSpec,
    LayerDir,
    PushResult,
    RegistryAuth,
    Scheme,
    Target,
)
from bot.pushers.registry import ecr
from bot.pushers.registry.auth import pull_scope, push_scope
from bot.pushers.registry.base_image import (
    BaseImage,
    fetch_base,
    host_architecture,
    unknown_base_host,
)
from bot.pushers.registry.client import RegistryClient, RetryPolicy
from bot.pushers.registry.endpoint import resolve_endpoint
from bot.pushers.registry.image import (
    Descriptor,
    NewLayer,
    build_config,
    build_manifest,
    digest_of,
    media_types_for,
)
from bot.pushers.registry.layers import Layer, LayerCache, LayerSource
from bot.pushers.registry.manifests import tag_manifest
from bot.pushers.registry.progress import ProgressReader, human_size, uploading
from bot.pushers.registry.spool import spool_dir, sweep_spool
from bot.pushers.registry.stream import LayerStream
from bot.pushers.registry.streamed import StreamFailed
from bot.pushers.registry.transport import TRANSPORT_ERRORS
from bot.pushers.registry.transport_errors import unknown_host, unreachable
from bot.settings import RegistrySettings

UPLOAD_THREADS = 4
CREATED_LABEL = "org.opencontainers.image.created"


class DaemonlessPusher:
    """``Pusher[ImageSpec]`` over the registry HTTP API. Safe to share between worker threads: every
    push makes its own clients (and each upload thread its own HTTP session).

    ``registries`` is the bot's ``[registries]`` config (CA files, ``insecure``,
    ``mirror_of``, ECR endpoint and repository creation); ``cache_dir`` holds the layer cache
    and the layers being built (``tmp/<host:pid:token>/``, one spool per process, so that
    ``sweep`` can remove a crashed process's as soon as it is gone). Every retry of a push
    is announced in its build log. A layer the cache does not know is uploaded while it is
    compressed (``RegistryClient.stream_blob``) unless ``stream_uploads`` is false; it is
    uploaded from its temp file when the cache knows it, when the registry refuses the
    stream, and on every retry. ``credentials`` is the bot's one resolver (built in
    ``bot.wiring``; required, so no second one is ever made): every client of every push
    asks it.
    """

    def __init__(
        self,
        registries: Mapping[str, RegistrySettings],
        cache_dir: Path,
        *,
        credentials: CredentialResolver,
        retry: RetryPolicy | None = None,
        threads: int = UPLOAD_THREADS,
        stream_uploads: bool = True,
    ) -> None:
        self.registries = registries
        self.credentials = credentials
        self.cache = LayerCache(cache_dir / "layers")
        self.tmp_dir = cache_dir / "tmp"
        self.retry = retry
        self.threads = threads
        self.stream_uploads = stream_uploads
        self.sweep()

    def sweep(self) -> list[Path]:
        """Removes the layer spools of crashed processes (``sweep_spool``); safe to call
        any time, from any thread. Returns what was removed."""
        return sweep_spool(self.tmp_dir)

    def client(
        self, registry: str, scheme: Scheme, auth: RegistryAuth, log: Log | None = None
    ) -> RegistryClient:
        """A client for one push (tests and tools may use it to read back). Its retries are
        announced in ``log`` (the bot's own log without one)."""
        client = RegistryClient(
            registry,
            scheme,
            auth,
            self.registries,
            retry=self.retry,
            log=log,
            credentials=self.credentials,
        )
        client.streaming = client.streaming and self.stream_uploads
        return client

    def push(self, source: ImageSpec, target: Target, log: Log) -> PushResult:
        """``Pusher[ImageSpec]``: assembles ``source`` and pushes it (see the module)."""
        image = source
        started = time.monotonic()
        try:
            return self._push_to(image, target, log, started)
        except RegistryUnavailable as err:
            # DNS says a host the user named (the step's target, or the box the image is
            # built on) does not exist: the user's mistake (failed), not the bot's
            # environment (errored).
            raise (
                unknown_host(err, target.registry) or unknown_base_host(err, image.base) or err
            ) from None

    def _push_to(self, image: ImageSpec, target: Target, log: Log, started: float) -> PushResult:
        ecr.prepare_repository(target, self.registries, log)
        with self.client(target.registry, target.scheme, target.auth, log) as client:
            try:
                client.ping()
                client.auth.want([push_scope(target.repository)])
                base, reader = self._base(image.base, client, target, log)
                try:
                    return self._push(image, target, log, client, base, reader, started)
                finally:
                    if reader is not client and reader is not None:
                        reader.close()
            except TRANSPORT_ERRORS as err:
                # one that escaped the retries (a stream read mid-copy): still readable
                raise unreachable(
                    target.registry, "push to", target.repository, err, client.secrets
                ) from None
            except (requests.RequestException, ValueError, KeyError) as err:
                # A registry answer we did not foresee (bad JSON, odd redirect): still a
                # registry problem for the user, never a traceback.
                raise RegistryError(
                    Masker(client.secrets).mask(
                        f"{target.registry}: unexpected answer while pushing "
                        f"{target.repository}: {type(err).__name__}: {str(err)[:200]}"
                    ),
                    registry=target.registry,
                    repository=target.repository,
                    action="push",
                ) from None

    def _base(
        self, ref: ImageRef | None, client: RegistryClient, target: Target, log: Log
    ) -> tuple[BaseImage | None, RegistryClient | None]:
        if ref is None:
            return None, None
        same_host = (
            resolve_endpoint(ref.registry, ref.scheme, self.registries).host == client.endpoint.host
        )
        if same_host and ref.auth == target.auth:
            source = client
        else:
            source = self.client(ref.registry, ref.scheme, ref.auth, log)
            source.ping()
        if same_host:
            client.auth.want([pull_scope(ref.repository)])
        try:
            return fetch_base(source, ref, host_architecture()), source
        except BaseException:
            if source is not client:
                source.close()
            raise

    def _push(
        self,
        image: ImageSpec,
        target: Target,
        log: Log,
        client: RegistryClient,
        base: BaseImage | None,
        source: RegistryClient | None,
        started: float,
    ) -> PushResult:
        repo = target.repository
        types = media_types_for(base.manifest_type if base else None)
        same_registry = source is not None and source.endpoint.host == client.endpoint.host
        jobs: list[Callable[[], tuple[Descriptor, NewLayer | None]]] = []
        if base is not None:
            assert source is not None
            for desc in base.layers:
                jobs.append(
                    lambda d=desc: self._copy_base_layer(  # type: ignore[misc]
                        d, base.ref, client, source, repo, same_registry, log
                    )
                )
        for layer_dir in image.layers:
            jobs.append(
                lambda ld=layer_dir: self._push_new_layer(  # type: ignore[misc]
                    ld, client, repo, types.layer, log
                )
            )
        results = self._run(jobs)
        descriptors = [d for d, _ in results]
        new_layers = [n for _, n in results if n is not None]

        config_bytes = build_config(
            image.config,
            new_layers,
            base=base.config if base else None,
            created=image.config.labels.get(CREATED_LABEL),
            architecture=str((base.config if base else {}).get("architecture") or "amd64"),
        )
        config_digest = digest_of(config_bytes)
        client.upload_blob(
            repo,
            config_digest,
            len(config_bytes),
            lambda: nullcontext(BytesIO(config_bytes)),
        )
        manifest = build_manifest(
            types, Descriptor(types.config, config_digest, len(config_bytes)), descriptors
        )
        digest = digest_of(manifest)
        tag_manifest(client, repo, target.tags, manifest, types.manifest, log, target.guard_tag)
        total = sum(d.size for d in descriptors) + len(config_bytes)
        log.progress(
            f"image {digest} ({human_size(total)} in {len(descriptors)} layers) pushed in "
            f"{time.monotonic() - started:.1f} s"
        )
        return PushResult(target.registry, repo, target.tags, digest, len(manifest))

    def _run(
        self, jobs: list[Callable[[], tuple[Descriptor, NewLayer | None]]]
    ) -> list[tuple[Descriptor, NewLayer | None]]:
        if not jobs:
            return []
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="push") as pool:
            futures: list[Future[tuple[Descriptor, NewLayer | None]]] = [
                pool.submit(job) for job in jobs
            ]
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future.done() and future.exception() is not None:
                    for other in futures:
                        other.cancel()
                    raise future.exception()  # type: ignore[misc]
            return [f.result() for f in futures]

    def _copy_base_layer(
        self,
        desc: Descriptor,
        base_ref: ImageRef,
        client: RegistryClient,
        source: RegistryClient,
        repo: str,
        same_registry: bool,
        log: Log,
    ) -> tuple[Descriptor, NewLayer | None]:
        started = time.monotonic()

        @contextlib.contextmanager
        def opener() -> Iterator[ProgressReader]:
            with source.open_blob(base_ref.repository, desc.digest, desc.size) as stream:
                yield ProgressReader(stream, desc.size, uploading(log, desc.digest, desc.size))

        mount = base_ref.repository if same_registry and base_ref.repository != repo else None
        outcome = client.upload_blob(repo, desc.digest, desc.size, opener, mount_from=mount)
        short = desc.digest[:19]
        if outcome == "exists":
            log.progress(f"Layer {short}… already exists")
        elif outcome == "mounted":
            log.progress(f"Layer {short}… mounted from {base_ref.repository}")
        else:
            log.progress(
                f"Layer {short}… copied from {base_ref.registry}/{base_ref.repository} "
                f"({human_size(desc.size)} in {time.monotonic() - started:.1f} s)"
            )
        return desc, None

    def _push_new_layer(
        self, layer_dir: LayerDir, client: RegistryClient, repo: str, media_type: str, log: Log
    ) -> tuple[Descriptor, NewLayer | None]:
        source = LayerSource(layer_dir, self.cache, spool_dir(self.tmp_dir))
        created_by = f"wercker-bot: layer at {layer_dir.image_path}"
        known = source.known()
        if known is not None and client.blob_exists(repo, known.digest):
            log.progress(f"Layer {known.digest[:19]}… already exists ({layer_dir.image_path})")
            source.record(known)
            return (
                Descriptor(media_type, known.digest, known.size),
                NewLayer(known.diff_id, created_by),
            )
        started = time.monotonic()
        if known is None and client.streaming:
            # Cold: nothing to HEAD by, so build and upload at once.
            layer, streamed = self._build_streaming(source, client, repo, log)
        else:
            layer, streamed = source.build(), False
        assert layer.path is not None
        path = layer.path
        try:
            built = (
                f"{human_size(source.total_bytes)} → {human_size(layer.size)} in "
                f"{time.monotonic() - started:.1f} s"
            )
            if streamed:
                log.progress(
                    f"Layer {layer.digest[:19]}… built from {layer_dir.image_path} and "
                    f"uploaded while building: {built}"
                )
            else:
                log.progress(
                    f"Layer {layer.digest[:19]}… built from {layer_dir.image_path}: {built}"
                )
                self._upload_file(client, repo, layer, path, log)
        finally:
            path.unlink(missing_ok=True)
        source.record(layer)
        return Descriptor(media_type, layer.digest, layer.size), NewLayer(layer.diff_id, created_by)

    def _build_streaming(
        self, source: LayerSource, client: RegistryClient, repo: str, log: Log
    ) -> tuple[Layer, bool]:
        """Builds the layer in the background and streams it into the registry as it is
        compressed. Returns the layer (its temp file complete) and whether the registry has
        it; when streaming failed the caller uploads the file."""
        stream = LayerStream(source).start()
        try:
            where, total = source.layer.image_path, human_size(source.total_bytes)

            def chunks() -> Iterator[bytes]:
                last = time.monotonic()
                for chunk in stream.chunks():
                    yield chunk
                    now = time.monotonic()
                    if now - last >= 5.0:
                        last = now
                        log.progress(
                            f"Layer from {where} ({total} of files) uploading while building: "
                            f"{human_size(stream.sent)} sent"
                        )

            try:
                client.stream_blob(repo, chunks(), stream.digest)
                streamed = True
            except StreamFailed as why:
                log.progress(
                    f"Layer from {source.layer.image_path}: streaming upload failed ({why}); "
                    "uploading the built layer from disk"
                )
                streamed = False
            finally:
                stream.abandon()
            return stream.finish(), streamed
        except BaseException:
            stream.discard()
            raise

    def _upload_file(
        self, client: RegistryClient, repo: str, layer: Layer, path: Path, log: Log
    ) -> None:
        started = time.monotonic()
        size, report = layer.size, uploading(log, layer.digest, layer.size)

        @contextlib.contextmanager
        def opener() -> Iterator[ProgressReader]:
            with path.open("rb") as fh:
                yield ProgressReader(fh, size, report)

        outcome = client.upload_blob(repo, layer.digest, size, opener)
        if outcome == "exists":
            log.progress(f"Layer {layer.digest[:19]}… already exists")
        else:
            log.progress(
                f"Layer {layer.digest[:19]}… uploaded: {human_size(layer.size)} in "
                f"{time.monotonic() - started:.1f} s"
            )
