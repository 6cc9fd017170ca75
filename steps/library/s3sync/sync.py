"""The s3sync step's sync: ``python3 sync.py [s3cmd-style flags] ./ s3://bucket/prefix/``.

Run by the step's run.sh with the box's python3 and boto3, the keys in the environment
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``). Like ``s3cmd sync``: every regular file
under the source directory whose key is missing remotely, or whose size or MD5 differs, is
uploaded (content type guessed from the name); with ``--delete-removed``, remote keys under
the prefix that have no local file are deleted. ``--acl-public`` makes uploads public-read,
``--acl-private`` private; ``--dry-run`` only prints; ``--exclude GLOB`` (repeatable) skips
matching relative paths. Other flags are warned about and ignored. Symbolic links are not
followed. Prints one line per action; exits 0 on success, 1 with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import mimetypes
import os
import sys
from collections.abc import Iterator
from typing import Any

# One PUT up to 5 GiB keeps the ETag an MD5, so unchanged files are recognised next time.
SINGLE_PUT_LIMIT = 5 * 1024**3
DELETE_BATCH = 1000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="s3sync", add_help=False)
    parser.add_argument("--acl-public", action="store_true")
    parser.add_argument("--acl-private", action="store_true")
    parser.add_argument("--delete-removed", action="store_true")
    parser.add_argument("--dry-run", "-n", action="store_true")
    parser.add_argument("--exclude", action="append", default=[])
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument("--region", default="")
    parser.add_argument("--endpoint-url", default="")
    parser.add_argument("source")
    parser.add_argument("destination")
    args, unknown = parser.parse_known_args(argv)
    for flag in unknown:
        print(f"s3sync: warning: s3cmd option {flag} is not supported; ignored", file=sys.stderr)
    return args


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (``bucket``, ``some/prefix/``)."""
    if not url.startswith("s3://") or len(url) <= len("s3://"):
        raise ValueError(f"bucket-url {url!r} is not an s3://bucket/prefix/ URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def local_files(root: str, excludes: list[str]) -> Iterator[tuple[str, str]]:
    """(relative path with /, absolute path) of each regular file under root."""
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if any(fnmatch.fnmatch(rel, pattern) for pattern in excludes):
                continue
            yield rel, path


def md5_of(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remote_objects(client: Any, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    """key → (size, ETag without quotes) of every object under prefix."""
    found: dict[str, tuple[int, str]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = (int(item["Size"]), str(item.get("ETag", "")).strip('"'))
    return found


def sync(client: Any, args: argparse.Namespace) -> int:
    from boto3.s3.transfer import TransferConfig

    bucket, prefix = split_url(args.destination)
    remote = remote_objects(client, bucket, prefix)
    extra: dict[str, str] = {}
    if args.acl_public:
        extra["ACL"] = "public-read"
    elif args.acl_private:
        extra["ACL"] = "private"
    config = TransferConfig(multipart_threshold=SINGLE_PUT_LIMIT)
    seen: set[str] = set()
    uploaded = 0
    for rel, path in local_files(args.source, args.exclude):
        key = prefix + rel
        seen.add(key)
        size = os.path.getsize(path)
        if key in remote and remote[key] == (size, md5_of(path)):
            continue
        content_type = mimetypes.guess_type(rel)[0] or "application/octet-stream"
        print(f"upload: {rel} -> s3://{bucket}/{key}")
        uploaded += 1
        if not args.dry_run:
            client.upload_file(
                path, bucket, key, ExtraArgs={**extra, "ContentType": content_type}, Config=config
            )
    gone = sorted(set(remote) - seen) if args.delete_removed else []
    for key in gone:
        print(f"delete: s3://{bucket}/{key}")
    if gone and not args.dry_run:
        for start in range(0, len(gone), DELETE_BATCH):
            batch = [{"Key": key} for key in gone[start : start + DELETE_BATCH]]
            answer = client.delete_objects(Bucket=bucket, Delete={"Objects": batch})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise RuntimeError(f"cannot delete {first.get('Key')}: {first.get('Message')}")
    print(f"Done. Uploaded {uploaded} file(s), deleted {len(gone)}.")
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
    except ImportError:
        print("s3sync: boto3 is not installed for this python3", file=sys.stderr)
        return 1
    kwargs: dict[str, str] = {}
    if args.region:
        kwargs["region_name"] = args.region
    if args.endpoint_url:
        kwargs["endpoint_url"] = args.endpoint_url
    try:
        return sync(boto3.client("s3", **kwargs), args)
    except EndpointConnectionError as error:
        print(f"s3sync: cannot reach S3 (no network from this box?): {error}", file=sys.stderr)
    except ClientError as error:
        info = error.response.get("Error", {})
        print(f"s3sync: S3 refused: {info.get('Code')}: {info.get('Message')}", file=sys.stderr)
    except (BotoCoreError, ValueError, RuntimeError, OSError) as error:
        print(f"s3sync: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
