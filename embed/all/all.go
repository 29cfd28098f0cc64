// Package all registers every embedder backend with embed; import
// it for its side effect where specs are opened (cmd/).
package all

import (
	_ "github.com/ragparity/ragparity/embed/glove"
	_ "github.com/ragparity/ragparity/embed/hashembed"
	_ "github.com/ragparity/ragparity/embed/openai"
)
