"""Pure geometry: CRS conversion, file reading and writing, validation. Knows no Flask and no database."""
