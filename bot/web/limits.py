"""``wercker-bot serve``'s HTTP limits and their ``--help`` text, with no imports: the CLI
builds its parser from them without importing the server (waitress), so ``wercker-bot check``
stays fast. ``bot.web.serve`` applies them."""

from __future__ import annotations

WEB_THREADS = 8  # requests handled at once (as the Procfile's `gunicorn --threads 8`)
CONNECTION_LIMIT = 500  # open connections; further ones wait in the listen backlog
PER_CLIENT_CONNECTIONS = 50  # open connections from one peer address; more are closed at once
READ_TIMEOUT = 30  # seconds a connection may stay silent (mid-request or idle) before closing
REQUEST_DEADLINE = 60  # seconds from a request's first byte until all of it must have arrived
# The body cap is a little over bot.app.MAX_BODY (25 MB), so that the app itself answers a
# body just over its cap with its own 413; far bigger bodies are refused by waitress unread.
BODY_LIMIT_SLACK = 1024 * 1024
SHUTDOWN_GRACE = 5  # seconds requests in flight get to finish on Ctrl-C / SIGTERM (waitress's)

LIMITS_HELP = f"""\
HTTP server limits: {WEB_THREADS} handler threads and at most {CONNECTION_LIMIT} open connections
(more wait in the listen backlog), at most {PER_CLIENT_CONNECTIONS} of them from one address (more
are closed at once; behind a reverse proxy, all clients share the proxy's address).
Requests are read and buffered before a handler thread sees them; a connection silent
for --read-timeout seconds, mid-request or idle, is closed; a request not wholly
received --request-deadline seconds after its first byte is answered 408 and closed;
bodies over {(25 << 20) + BODY_LIMIT_SLACK >> 20} MB are refused unread.
Ctrl-C or SIGTERM stops taking connections, lets requests in flight finish (up to
{SHUTDOWN_GRACE} s) and stops the workers.
"""
