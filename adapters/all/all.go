// Package all registers every backend; cmd/ imports it for its side effects.
package all

import (
	_ "github.com/ragparity/ragparity/adapters/embedded"
	_ "github.com/ragparity/ragparity/adapters/localfs"
	_ "github.com/ragparity/ragparity/adapters/pgvector"
	_ "github.com/ragparity/ragparity/adapters/qdrant"
	_ "github.com/ragparity/ragparity/adapters/s3"
)
