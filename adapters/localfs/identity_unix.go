//go:build unix

package localfs

import (
	"fmt"
	"io/fs"
	"syscall"
)

// identity is a file's device, inode and ctime: a rewrite with the same
// size and a restored mtime (cp -p, touch -r) changes the ctime, a
// replacement by rename changes the inode.
func identity(fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return unidentified()
	}
	return fmt.Sprintf("dev=%d;ino=%d;ctime=%d.%09d", st.Dev, st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
}
