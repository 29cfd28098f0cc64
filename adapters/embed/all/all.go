// Package all registers every embedder backend with adapters/embed; import
// it for its side effect where specs are opened (cmd/).
package all

import (
	_ "github.com/ragparity/ragparity/adapters/embed/glove"
	_ "github.com/ragparity/ragparity/adapters/embed/hashembed"
	_ "github.com/ragparity/ragparity/adapters/embed/openai"
)
