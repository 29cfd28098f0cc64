package qdrant

// SetSkipPage sets how many ids one skip request of ScanShard reads, and
// returns the function that restores it.
func SetSkipPage(n int64) func() {
	old := skipPage
	skipPage = n
	return func() { skipPage = old }
}
