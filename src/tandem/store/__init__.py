"""The one place that talks to a database: SQLite files under the data directory."""

from tandem.store.sqlite import Database, StoreError

__all__ = ["Database", "StoreError"]
