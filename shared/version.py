# The one version number of StringCare: firmware reports it on the bus (info
# command), bundles stamp it, and the host package uses it as its own version.
from shared.compat import const

VERSION = "0.1.0"
VERSION_MAJOR = const(0)
VERSION_MINOR = const(1)
VERSION_PATCH = const(0)
