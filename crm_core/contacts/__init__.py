"""People: their identities across channels, linking and merging them, tags, reach, privacy (export, erase)."""
