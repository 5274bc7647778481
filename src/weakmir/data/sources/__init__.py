"""Real datasets in their published layouts, each turned into a manifest.

Nothing downloads: a loader reads what the user has and says what is missing.
"""

SOURCES = ("bach10", "musdb", "musdb-hq", "mdx23", "slakh", "openmic")
