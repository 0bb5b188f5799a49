"""How a layer deletes what lower layers hold (OCI image spec, "Whiteouts")."""

WHITEOUT = ".wh."  # .wh.NAME deletes NAME
OPAQUE = ".wh..wh..opq"  # hides everything lower layers put in its directory
