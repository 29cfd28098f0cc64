//go:build !linux

package server

// setThreadNice: per-thread priority is Linux-only; elsewhere the child
// runs at the parent's priority.
func setThreadNice(int) error { return nil }
