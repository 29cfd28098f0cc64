package reports

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format is one rendering of a verdict.
type Format string

const (
	FormatJSON     Format = "json"
	FormatMarkdown Format = "md"
	FormatHTML     Format = "html"
	FormatJUnit    Format = "junit"
)

// Formats lists every format, in the order WriteAll writes them.
var Formats = []Format{FormatJSON, FormatMarkdown, FormatHTML, FormatJUnit}

// FileName is the file WriteAll writes a format to.
func (f Format) FileName() string {
	switch f {
	case FormatJSON:
		return "report.json"
	case FormatMarkdown:
		return "report.md"
	case FormatHTML:
		return "report.html"
	case FormatJUnit:
		return "junit.xml"
	}
	return ""
}

// ParseFormats reads a comma-separated list such as "html,md". Accepted
// names: json, md (markdown), html, junit (xml); "all" is every format.
func ParseFormats(s string) ([]Format, error) {
	var out []Format
	seen := map[Format]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		var f Format
		switch name {
		case "all":
			for _, f := range Formats {
				if !seen[f] {
					seen[f] = true
					out = append(out, f)
				}
			}
			continue
		case "json":
			f = FormatJSON
		case "md", "markdown":
			f = FormatMarkdown
		case "html":
			f = FormatHTML
		case "junit", "xml":
			f = FormatJUnit
		case "":
			continue
		default:
			return nil, fmt.Errorf("unknown report format %q (want json, md, html, junit or all)", name)
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no report format in %q", s)
	}
	return out, nil
}

// Render writes m in format f.
func Render(w io.Writer, f Format, m *Model) error {
	switch f {
	case FormatJSON:
		return JSON(w, m)
	case FormatMarkdown:
		return Markdown(w, m)
	case FormatHTML:
		return HTML(w, m)
	case FormatJUnit:
		return JUnit(w, m)
	}
	return fmt.Errorf("reports: unknown format %q", f)
}

// WriteAll writes every format into dir (report.json, report.md,
// report.html, junit.xml), creating dir if needed, and returns the paths.
func WriteAll(dir string, m *Model) ([]string, error) {
	return WriteFormats(dir, m, Formats...)
}

// WriteFormats writes the given formats into dir under their FileName.
// Each file is written atomically (a temporary file renamed into place);
// every format is rendered before any file is written, so a rendering
// error leaves dir as it was.
func WriteFormats(dir string, m *Model, formats ...Format) ([]string, error) {
	bodies := make([][]byte, len(formats))
	for i, f := range formats {
		var buf bytes.Buffer
		if err := Render(&buf, f, m); err != nil {
			return nil, fmt.Errorf("reports: %s: %w", f, err)
		}
		bodies[i] = buf.Bytes()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for i, f := range formats {
		p := filepath.Join(dir, f.FileName())
		if err := writeAtomic(p, bodies[i]); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// WriteFile writes one report to path, in the format its extension names:
// .html/.htm, .md, .json, .xml (JUnit). It is atomic like WriteFormats.
func WriteFile(path string, m *Model) error {
	f, err := FormatForPath(path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := Render(&buf, f, m); err != nil {
		return fmt.Errorf("reports: %s: %w", f, err)
	}
	return writeAtomic(path, buf.Bytes())
}

// FormatForPath picks a format from a file name's extension.
func FormatForPath(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".html", ".htm":
		return FormatHTML, nil
	case ".md", ".markdown":
		return FormatMarkdown, nil
	case ".json":
		return FormatJSON, nil
	case ".xml":
		return FormatJUnit, nil
	}
	return "", fmt.Errorf("reports: cannot tell the format of %q from its extension (want .html, .md, .json or .xml)", path)
}

// writeAtomic writes b to a temporary file beside path and renames it
// into place, so readers see the old file or the new one, never a part.
func writeAtomic(path string, b []byte) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(b); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
