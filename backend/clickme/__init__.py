"""ClickMe: a web game in which people teach deep networks how to see."""

__version__ = "0.1.0"
