"""In-memory fakes typed against the bot's Protocols, for millisecond unit tests."""
