"""news-monitor: one alert per story, not per copy."""

__version__ = "0.1.0"
