"""A geometry column that holds Shapely geometries: PostGIS geometry(…, 4326) or WKB on SQLite."""
import importlib

from sqlalchemy.types import LargeBinary, TypeDecorator


def _lazy(name):
    """``name`` imported the first time a geometry is encoded or decoded, not with the models.

    NumPy, Shapely and GeoAlchemy2 cost ~0.2 s to import, and a command that reads no geometry
    (``gridmap plan list``) should not pay for them; after the first use this is one dict lookup.
    """
    module = None

    def get():
        nonlocal module
        if module is None:
            module = importlib.import_module(name)
        return module
    return get


_shapely, _numpy, _geoalchemy2 = _lazy("shapely"), _lazy("numpy"), _lazy("geoalchemy2")


class Geometry(TypeDecorator):
    """Shapely geometry in WGS84 lon/lat.

    On PostgreSQL the column is a real PostGIS ``geometry(TYPE, 4326)`` (GiST
    indexes are created by the migrations); values travel as hex EWKB, which
    PostGIS's own input and output functions speak, so no SQL function wraps
    every bind and select. On SQLite the column is plain WKB.
    """

    impl = LargeBinary
    cache_ok = True
    # read by GeoAlchemy2's table events: the GiST indexes come from our migrations
    spatial_index = False
    use_N_D_index = False

    def __init__(self, geometry_type="GEOMETRY"):
        super().__init__()
        self.geometry_type = geometry_type.upper()

    def load_dialect_impl(self, dialect):
        # GeoAlchemy2's DDL events probe with dialect=None; answering "not spatial" keeps
        # them out of our tables (we create GiST indexes in the migrations ourselves).
        if dialect is not None and dialect.name == "postgresql":
            return dialect.type_descriptor(
                _geoalchemy2().Geometry(self.geometry_type, srid=4326, spatial_index=False))
        return dialect.type_descriptor(LargeBinary()) if dialect is not None else LargeBinary()

    def process_bind_param(self, value, dialect):
        if value is None or isinstance(value, (bytes, str)):
            return value  # already encoded in bulk by encode_many
        shapely = _shapely()
        if dialect.name == "postgresql":
            return shapely.to_wkb(shapely.set_srid(value, 4326), hex=True, include_srid=True)
        return shapely.to_wkb(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        data = getattr(value, "data", value)  # GeoAlchemy2 hands back a WKBElement on PostGIS
        if isinstance(data, memoryview):
            data = bytes(data)
        return _shapely().from_wkb(data)

    def __repr__(self):
        return f"Geometry({self.geometry_type!r})"


def encode_many(geoms, dialect_name):
    """Encode an array of geometries for a bulk insert in one vectorised call.

    Per-row encoding in ``process_bind_param`` costs more than the insert itself
    on a million points; this returns what that method would, for all rows at once.
    """
    shapely = _shapely()
    geoms = _numpy().asarray(geoms, dtype=object)
    if dialect_name == "postgresql":
        return shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
    return shapely.to_wkb(geoms)
