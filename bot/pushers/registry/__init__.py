"""Our own thin Docker Registry HTTP API V2 client and image assembly (registry-push.md §7).

Modules, one job each:

- ``client``: ``RegistryClient`` — ping, auth and re-auth, retries, the error for an answer;
- ``transport``: the ``Transport`` seam every request goes through, and ``RequestsTransport``;
- ``retry``: ``RetryPolicy``, ``Retry-After``, and how a retry line says its wait;
- ``ping``: ``GET /v2/`` — scheme, challenge, "is this a registry";
- ``uploads``: blob upload (mount, ``PUT`` or ``PATCH`` + ``PUT``), restarted from ``POST``;
- ``streamed``: a blob uploaded while it is produced (one chunked ``PATCH``);
- ``blobs``: reading blobs; ``manifests``: reading and storing manifests;
- ``auth``: which credentials apply, Basic/Bearer challenge answering, token cache, realm check;
- ``challenge``: ``WWW-Authenticate`` parsing;
- ``ecr``: ECR login tokens and repository creation through boto3;
- ``endpoint``: where a named registry is really reached (``mirror_of``, TLS, http fallback);
- ``errors``: registry answers → ``RegistryError``/``RegistryAuthError``/``RegistryUnavailable``;
- ``transport_errors``: no answer at all (DNS, TLS, refused, dropped) → sentences and errors;
- ``layers``: deterministic layer tar+gzip and the on-disk layer cache;
- ``stream``: a layer uploaded while it is compressed;
- ``spool``: per-process directories of layers being built, and their sweep;
- ``progress``: upload progress for build logs;
- ``base_image``: a base image's manifest (for this host's platform) and config;
- ``image``: config JSON (its runtime config is ``bot.pushers.image_config.merge_config``)
  and manifest bytes.

Callers outside this package use ``bot.pushers.daemonless.DaemonlessPusher`` and
``bot.pushers.target``; ``RegistryClient`` is for tools and tests that speak to a registry.
"""
