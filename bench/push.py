"""Push benchmark, printed as a table (not a test):

1. cold push of an image with one 200 MB layer of random files: ours (tar + gzip streamed
   into the upload; target ≤ 1.0× skopeo), ours with the layer already built (upload only),
   ``skopeo copy dir:… docker://…`` of the same blobs, and ``docker push`` of the same files
   ``docker import``-ed into a private dockerd (skipped, with the reason, when none can
   start);
2. warm re-push of the same image (target < 0.3 s);
3. peak RSS of a child process pushing a 1 GiB layer (target < 120 MB).

Everything runs against a local distribution registry (plain HTTP) started for the run.
Ratios are against skopeo measured in the same run.

Cold figures are medians of ``--repeat`` rounds (each round: fresh cache, fresh repositories).

Run: ``.venv/bin/python bench/push.py [--layer-mb 200] [--big-mb 1024] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import nullcontext
from io import BytesIO
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.logs import MemoryLog
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.model import ImageConfig, ImageSpec, LayerDir, Target
from bot.pushers.registry.client import RegistryClient
from bot.pushers.registry.image import (
    DOCKER,
    Descriptor,
    NewLayer,
    build_config,
    build_manifest,
    digest_of,
)
from bot.pushers.registry.layers import LayerCache, LayerSource
from tests.harness.registry import run_skopeo, start_registry

COLD_TARGET = 1.0  # cold push: at most this many times skopeo's time for the same blobs
WARM_TARGET = 0.3  # seconds
RSS_TARGET_MB = 120


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def cold_row(layer_mb: int, cold_s: float, skopeo_s: float) -> tuple[str, str, str]:
    """The cold-push row: our time, its ratio to skopeo's and the verdict against
    ``COLD_TARGET``."""
    ratio = cold_s / skopeo_s
    return (
        f"cold push {layer_mb} MB layer: ours, tar+gzip+upload (target <= {COLD_TARGET:.1f}x "
        "skopeo)",
        f"{cold_s:.2f} s",
        f"{ratio:.2f}x skopeo {verdict(cold_s <= COLD_TARGET * skopeo_s)}",
    )


CHILD = textwrap.dedent(
    """
    import resource, sys, time
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from bot.logs import MemoryLog
    from bot.pushers.credentials import RegistryCredentials
    from bot.pushers.daemonless import DaemonlessPusher
    from bot.pushers.model import ImageConfig, ImageSpec, LayerDir, Target
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    DaemonlessPusher({{}}, Path({cache!r}), credentials=RegistryCredentials({{}})).push(
        ImageSpec([LayerDir(Path({src!r}), "/data")], ImageConfig()),
        Target({host!r}, "bench/big", ("v1",), "http"), MemoryLog())
    print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic() - started)
    """
)


def random_tree(root: Path, total_mb: int, file_mb: int) -> Path:
    root.mkdir(parents=True)
    chunk = 1 << 20
    for i in range(max(1, total_mb // file_mb)):
        with open(root / f"f{i:04d}.bin", "wb") as fh:
            for _ in range(file_mb):
                fh.write(os.urandom(chunk))
    return root


def timed(fn, *args):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    result = fn(*args)
    return time.monotonic() - started, result


def skopeo_dir_layout(work: Path, layer_path: Path, layer_digest: str, diff_id: str) -> Path:
    """A ``dir:`` image (skopeo's directory transport) holding our compressed layer."""
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    out = work / "skopeo-dir"
    out.mkdir()
    size = layer_path.stat().st_size
    os.link(layer_path, out / layer_digest.removeprefix("sha256:"))
    config = build_config(ImageConfig(cmd=["/x"]), [NewLayer(diff_id, "bench")])
    config_digest = digest_of(config)
    (out / config_digest.removeprefix("sha256:")).write_bytes(config)
    manifest = build_manifest(
        DOCKER,
        Descriptor(DOCKER.config, config_digest, len(config)),
        [Descriptor(DOCKER.layer, layer_digest, size)],
    )
    (out / "manifest.json").write_bytes(manifest)
    (out / "version").write_text("Directory Transport Version: 1.1\n")
    for path in [out, *out.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return out


def upload_only(host: str, repo: str, layer_path: Path, digest: str, diff_id: str) -> None:
    client = RegistryClient(
        host, "http", Target(host, repo, ("v1",)).auth, {}, credentials=RegistryCredentials({})
    )
    size = layer_path.stat().st_size
    client.upload_blob(repo, digest, size, lambda: layer_path.open("rb"))
    config = build_config(ImageConfig(cmd=["/x"]), [NewLayer(diff_id, "bench")])
    cdigest = digest_of(config)
    client.upload_blob(repo, cdigest, len(config), lambda: nullcontext(BytesIO(config)))
    manifest = build_manifest(
        DOCKER,
        Descriptor(DOCKER.config, cdigest, len(config)),
        [Descriptor(DOCKER.layer, digest, size)],
    )
    client.put_manifest(repo, "v1", manifest, DOCKER.manifest)
    client.close()


class DockerPeer:
    """``docker push`` through a private engine (started like ``tests/harness/dockerd.py``),
    of an image ``docker import``-ed from the same files. Every round pushes to a fresh
    registry: the engine remembers which registry has which layer and would mount or skip
    it otherwise, so each round is a cold push (the engine gzips the layer while pushing)."""

    def __init__(self, work: Path, src: Path) -> None:
        self.work = work
        self.src = src
        self.proc: Any = None
        self.handle: Any = None
        self.skipped = ""

    def start(self) -> bool:
        from tests.harness.dockerd import _unavailable, start_dockerd

        reason = _unavailable()
        if reason:
            self.skipped = reason
            return False
        try:
            self.proc, self.handle = start_dockerd()
        except Exception as err:
            self.skipped = f"dockerd did not start: {str(err).splitlines()[0]}"
            return False
        client = self.handle.client(timeout=600)
        tar = self.work / "docker-layer.tar"
        subprocess.run(["tar", "-C", str(self.src), "-cf", str(tar), "."], check=True)
        with open(tar, "rb") as fh:
            client.api.import_image(src=fh, repository="bench/docker", tag="v1")
        tar.unlink()
        return True

    def push_round(self, round_: int) -> float:
        registry = start_registry(self.work / f"docker-registry{round_}", "plain")
        try:
            client = self.handle.client(timeout=600)
            repo = f"{registry.host}/bench/docker{round_}"
            client.api.tag("bench/docker:v1", repo, "v1")
            started = time.monotonic()
            digest = None
            for line in client.api.push(repo, tag="v1", stream=True, decode=True, auth_config={}):
                if "error" in line or "errorDetail" in line:
                    raise RuntimeError(f"docker push failed: {line.get('error')}")
                digest = (line.get("aux") or {}).get("Digest") or digest
            elapsed = time.monotonic() - started
            if digest is None:
                raise RuntimeError("docker push reported no digest")
            return elapsed
        finally:
            registry.stop()

    def stop(self) -> None:
        if self.proc is not None:
            from tests.harness.dockerd import stop_dockerd

            stop_dockerd(self.proc, self.handle)
            self.proc = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer-mb", type=int, default=200)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3, help="cold rounds (medians)")
    parser.add_argument("--no-docker", action="store_true", help="skip the docker push row")
    args = parser.parse_args()

    # world-readable work dir: skopeo runs as nobody when we are root (see run_skopeo)
    work = Path(tempfile.mkdtemp(prefix="wb-bench-push-"))
    work.chmod(0o755)
    registry = start_registry(work / "registry", "plain")
    rows: list[tuple[str, str, str]] = []
    docker: DockerPeer | None = None
    try:
        host = registry.host
        src = random_tree(work / "src", args.layer_mb, 1)
        image = ImageSpec([LayerDir(src, "/data")], ImageConfig(cmd=["/x"]))

        # 1. cold: fresh cache and fresh repositories for every round; medians are reported
        colds, builds, uploads, skopeos, dockers = [], [], [], [], []
        for round_ in range(args.repeat):
            pusher = DaemonlessPusher(
                {}, work / f"cache{round_}", credentials=RegistryCredentials({})
            )
            target = Target(host, f"bench/ours{round_}", ("v1",), "http")
            colds.append(timed(pusher.push, image, target, MemoryLog())[0])
            # the same layer, built once, then upload-only (what skopeo does)
            source = LayerSource(
                LayerDir(src, "/data"), LayerCache(work / f"built{round_}"), work / "tmp"
            )
            build_s, layer = timed(source.build)
            builds.append(build_s)
            assert layer.path is not None
            uploads.append(
                timed(
                    upload_only,
                    host,
                    f"bench/upload{round_}",
                    layer.path,
                    layer.digest,
                    layer.diff_id,
                )[0]
            )
            layout = skopeo_dir_layout(
                work / f"sk{round_}", layer.path, layer.digest, layer.diff_id
            )
            skopeo_s, done = timed(
                run_skopeo,
                [
                    "copy",
                    "--dest-tls-verify=false",
                    f"dir:{layout}",
                    f"docker://{host}/bench/skopeo{round_}:v1",
                ],
            )
            if done.returncode != 0:
                raise SystemExit(f"skopeo failed: {done.stderr}")
            skopeos.append(skopeo_s)
            layer.path.unlink()
        cold, build_s, upload_s, skopeo_s = (
            statistics.median(x) for x in (colds, builds, uploads, skopeos)
        )
        # the engine runs only now: an idle dockerd + containerd next to the other peers
        # slowed all of them (CPU on a 2-core machine)
        docker = DockerPeer(work, src)
        if args.no_docker:
            docker.skipped = "--no-docker"
        if not args.no_docker and docker.start():
            dockers = [docker.push_round(round_) for round_ in range(args.repeat)]
            docker.stop()
        else:
            print(f"docker push row skipped: {docker.skipped}", file=sys.stderr)
        docker_s = statistics.median(dockers) if dockers else None

        # 2. warm: the same image again, same cache
        warm, _ = timed(pusher.push, image, target, MemoryLog())

        # 3. peak RSS pushing a big layer, in a child process
        big = random_tree(work / "big", args.big_mb, 16)
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD.format(
                    root=str(Path(__file__).resolve().parents[1]),
                    cache=str(work / "cache-big"),
                    src=str(big),
                    host=host,
                ),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        base_kb, peak_kb, big_s = child.stdout.split()

        mb = args.layer_mb
        rows += [
            cold_row(mb, cold, skopeo_s),
            ("  of which layer build (tar+gzip, one pass)", f"{build_s:.2f} s", ""),
            (
                "cold push, layer prebuilt: ours, upload only",
                f"{upload_s:.2f} s",
                f"{upload_s / skopeo_s:.2f}x skopeo",
            ),
            ("cold push, same blobs: skopeo copy dir: → docker://", f"{skopeo_s:.2f} s", "1.00x"),
            (
                "cold push: docker push",
                f"{docker_s:.2f} s" if docker_s is not None else f"skipped ({docker.skipped})",
                f"{docker_s / skopeo_s:.2f}x skopeo" if docker_s is not None else "",
            ),
            (
                f"warm re-push (target < {WARM_TARGET} s)",
                f"{warm:.3f} s",
                verdict(warm < WARM_TARGET),
            ),
            (
                f"peak RSS pushing a {args.big_mb} MB layer (target < {RSS_TARGET_MB} MB)",
                f"{int(peak_kb) / 1024:.0f} MB",
                verdict(int(peak_kb) < RSS_TARGET_MB * 1024),
            ),
            ("  of which interpreter + imports", f"{int(base_kb) / 1024:.0f} MB", ""),
            (f"  time for that {args.big_mb} MB push", f"{float(big_s):.1f} s", ""),
        ]
    finally:
        if docker is not None:
            docker.stop()
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  ratio / verdict")
    print("-" * (width + 34))
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>12}  {note}")
    rounds = {
        "ours": colds,
        "build": builds,
        "upload_only": uploads,
        "skopeo": skopeos,
        "docker": dockers,
    }
    print(
        json.dumps(
            {
                "layer_mb": args.layer_mb,
                "big_mb": args.big_mb,
                "cold_rounds_s": {k: [round(x, 2) for x in v] for k, v in rounds.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
