package gate

import (
	"fmt"
)

// capEvidence prefixes each item with the region and keeps the first max,
// then says how many more there are and where to see them ("ids (run
// ragparity diff ...)"). Every check caps its evidence here.
func capEvidence(region string, items []string, max int, more string) []string {
	if max <= 0 {
		max = defaultMaxEvidence
	}
	var ev []string
	for i, s := range items {
		if i == max {
			ev = append(ev, fmt.Sprintf("%s: ... and %d more %s", region, len(items)-max, more))
			break
		}
		ev = append(ev, region+": "+s)
	}
	return ev
}

const defaultMaxEvidence = 20
