package main

import (
	"io/fs"
	"strings"
	"testing"
)

// Every command answers -h with exit 0 and a usage text, and every help
// file is the text some command prints: a help file no command reads, or
// a command whose -h fails, is a test failure.
func TestEveryCommandHasHelpAndEveryHelpFileIsUsed(t *testing.T) {
	printed := map[string]string{}
	for name := range commands {
		code, out, errOut := runCLI(t, name, "-h")
		if code != 0 {
			t.Errorf("%s -h: exit %d", name, code)
		}
		text := out + errOut
		if !strings.Contains(text, "Usage") {
			t.Errorf("%s -h prints no usage: %q", name, text)
		}
		printed[name] = text
	}
	files, err := fs.Glob(helpFiles, "help/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("help files: %v %v", files, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(f, "help/"), ".txt")
		text := help(name)
		if !strings.HasPrefix(text, "Usage") {
			t.Errorf("%s does not start with Usage", f)
		}
		if !strings.Contains(printed[name], text) {
			t.Errorf("`ragparity %s -h` does not print %s", name, f)
		}
	}
}
