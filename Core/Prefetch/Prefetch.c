// CyclonePrefetch is header-only (include/CyclonePrefetch.h); SwiftPM needs a source file in a C target.
#include "CyclonePrefetch.h"
