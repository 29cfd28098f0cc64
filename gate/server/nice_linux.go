package server

import "syscall"

// setThreadNice raises the calling OS thread's nice value by n.
func setThreadNice(n int) error {
	tid := syscall.Gettid()
	// getpriority returns 20 - nice on Linux.
	cur, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	if err != nil {
		return err
	}
	return syscall.Setpriority(syscall.PRIO_PROCESS, tid, min(19, 20-cur+n))
}
