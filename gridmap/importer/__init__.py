"""The import border: read a file, validate every feature and field, write all of it in one transaction or nothing.

- :mod:`.kinds` — what each kind accepts (fields, geometry) and its check and writer, as data
- :mod:`.fields` — columns renamed to our fields, each field converted, problems per row
- :mod:`.checks` — references resolved before anything is written
- :mod:`.writers` — each kind into its tables
- :mod:`.layer` — one file through all of it in one transaction
- :mod:`.export` — every record of a kind back to a file
- :mod:`.upsert` — records matched by source key: created, updated, unchanged, retired in bulk
- :mod:`.batches` — source keys, the batch history, undo, single-record corrections
"""
from .batches import list_batches, retire_record, undo_batch, update_record
from .export import export_file, export_frame
from .fields import parse_field_map
from .kinds import KINDS, Field, Kind
from .layer import Summary, import_file, import_layer, read

__all__ = ["KINDS", "Field", "Kind", "Summary", "export_file", "export_frame", "import_file", "import_layer",
           "list_batches", "parse_field_map", "read", "retire_record", "undo_batch", "update_record"]
