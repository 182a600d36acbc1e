"""Infrastructure every other part stands on: atomic writes, locks, replacing a folder whole, signals,
limits on memory and paths. Nothing here knows about models or data."""
