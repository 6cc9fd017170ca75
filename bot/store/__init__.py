"""The store: builds, attempts, pipelines, steps, images, logs, deliveries and the status
outbox; it doubles as the queue. It only persists, and reports facts to its listener.

- ``base``: the Protocols (``Store`` and the narrower ``IntakeStore``, ``QueueStore``,
  ``AttemptRecords``, ``OutboxStore``, ``LogReads``, ``ReadModels``) and their constants.
- ``rows``: the plain data it takes and returns; ``facts``: what it tells its listener.
- ``sql``: ``SqlStore``, made of one part per job on one ``db.Database``: ``intake``,
  ``queue``, ``records``, ``logs``, ``outbox``, ``reads``.
- ``schema`` (the tables), ``migrate`` and ``migrations`` (Alembic revisions).

Importing this package or ``base`` loads no database code.
"""
