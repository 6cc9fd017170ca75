"""Forges: where the repositories live, behind one seam.

- ``base``: the ``Forge`` Protocol (verify a delivery, parse it, post a commit status).
- ``events``: what a delivery turns into (``Ping``, ``Ignored``, ``PushEvent``).
- ``outcome``: what one status post came to (``PostOutcome``) and the default ``backoff``.
- ``github``: ``GitHubForge`` and the GitHub functions it is made of.

``bot.wiring`` builds the one forge of a process; nothing else names an implementation.
"""
