package main

import "embed"

// The long help texts, one file a command, kept as text so they read (and
// diff) as the documentation they are.
//
//go:embed help/*.txt
var helpFiles embed.FS

// help is the text of help/NAME.txt.
func help(name string) string {
	b, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic("ragparity: no help text " + name + ": " + err.Error())
	}
	return string(b)
}
