"""Jiritsu: a self-optimising crypto portfolio on Bybit. Importing this package stays cheap."""

__version__ = "0.1.0"
