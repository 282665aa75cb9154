"""tutopanda producers: the Producer SDK, built-in producers, stores and the CLI."""

__version__ = "0.1.0"
