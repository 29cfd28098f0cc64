package blobtest

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// ServiceEnv reads a test service setting (RAGPARITY_S3_ENDPOINT, ...)
// from the environment, else from the services.env file that
// scripts/services.sh writes under the user's cache folder.
func ServiceEnv(name string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	dir := os.Getenv("XDG_CACHE_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache")
	}
	f, err := os.Open(filepath.Join(dir, "ragparity", "services.env"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && k == name {
			return v
		}
	}
	return ""
}
