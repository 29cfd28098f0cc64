package parity

// ShortHex is the first 12 characters of a hash (the whole string when
// shorter): how messages, reports and the demo name a hash to a reader.
func ShortHex(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
