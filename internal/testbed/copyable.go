package testbed

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// What an operator copies from the documentation and from the chart's NOTES
// is the tests' input: these helpers take it out literally, and Substitute
// replaces only what a user replaces with their own names.

// FencedBlock returns the body of the one fenced code block of the Markdown
// file (relative to the repository's root) whose text starts with prefix.
func FencedBlock(t TB, file, prefix string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(RepoRoot(t), file))
	if err != nil {
		t.Fatalf("%v", err)
	}
	var found []string
	var body []string
	inBlock := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "```") && !inBlock:
			inBlock, body = true, nil
		case strings.HasPrefix(line, "```"):
			inBlock = false
			if text := strings.Join(body, "\n") + "\n"; strings.HasPrefix(text, prefix) {
				found = append(found, text)
			}
		case inBlock:
			body = append(body, line)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s has %d code blocks starting with %q, want 1", file, len(found), prefix)
	}
	return found[0]
}

// NotesManifest returns the manifest that the chart's NOTES, in helm
// install's output, print for `kubectl apply -f -`: from its first line that
// starts with "apiVersion: " to the first blank line after it.
func NotesManifest(t TB, helmOutput string) string {
	t.Helper()
	_, notes, ok := strings.Cut(helmOutput, "\nNOTES:\n")
	if !ok {
		t.Fatalf("helm's output has no NOTES:\n%s", helmOutput)
	}
	var manifest []string
	for _, line := range strings.Split(notes, "\n") {
		if len(manifest) == 0 && !strings.HasPrefix(line, "apiVersion: ") {
			continue
		}
		if strings.TrimSpace(line) == "" {
			break
		}
		manifest = append(manifest, line)
	}
	if len(manifest) == 0 {
		t.Fatalf("the NOTES print no manifest:\n%s", notes)
	}
	return strings.Join(manifest, "\n") + "\n"
}

// Substitute replaces, in order, each old string of pairs (old, new, old,
// new, ...) with its new one, everywhere in text. Each old string must occur:
// a document that no longer has it fails the test rather than going
// untested.
func Substitute(t TB, text string, pairs ...string) string {
	t.Helper()
	if len(pairs)%2 != 0 {
		t.Fatalf("Substitute needs old and new strings in pairs, got %d", len(pairs))
	}
	for i := 0; i < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("the text to substitute in has no %q:\n%s", pairs[i], text)
		}
		text = strings.ReplaceAll(text, pairs[i], pairs[i+1])
	}
	return text
}

// ShellCommands splits a shell code block into its commands' words, as sh
// would for the plain commands documentation shows: a line ending in a
// backslash continues on the next, `#` starts a comment, and single quotes
// group a word. Any other quoting or expansion fails the test, rather than
// being read differently from a shell.
func ShellCommands(t TB, block string) [][]string {
	t.Helper()
	var commands [][]string
	for _, line := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		var words []string
		for _, word := range strings.Fields(line) {
			if strings.HasPrefix(word, "#") {
				break
			}
			if strings.Count(word, "'")%2 != 0 || strings.ContainsAny(word, "\"\\$`") {
				t.Fatalf("the command %q has quoting this test does not parse: %s", line, word)
			}
			words = append(words, strings.ReplaceAll(word, "'", ""))
		}
		if len(words) > 0 {
			commands = append(commands, words)
		}
	}
	return commands
}

// PublishedRegistry is where the release workflow pushes, as the
// documentation's commands name it; ExampleMirror is the documentation's
// private registry, where a user's own `make release` pushes.
const (
	PublishedRegistry = "ghcr.io/cert-manager-webhook-exec"
	ExampleMirror     = "registry.example.com/cert-manager-webhook-exec"
)

// PublishedChart is the chart as the documentation's helm commands name it.
const PublishedChart = "oci://" + PublishedRegistry + "/charts/cert-manager-webhook-exec"

// WithChartDir returns the arguments of a documented helm command with the
// published chart and its --version replaced by the chart directory dir:
// the same install, of this checkout.
func WithChartDir(t TB, args []string, dir string) []string {
	t.Helper()
	i := slices.Index(args, PublishedChart)
	if i < 0 {
		t.Fatalf("the command %q does not name the chart %s", args, PublishedChart)
	}
	out := slices.Replace(slices.Clone(args), i, i+1, dir)
	v := slices.Index(out, "--version")
	if v < 0 || v+1 >= len(out) {
		t.Fatalf("the command %q names no --version of the chart", args)
	}
	return slices.Delete(out, v, v+2)
}

// WithRegistry returns the arguments of a documented command with the
// registry path it names (PublishedRegistry or ExampleMirror) replaced by
// path, where `make release REGISTRY=path` pushed.
func WithRegistry(args []string, documented, path string) []string {
	out := slices.Clone(args)
	for i, arg := range out {
		out[i] = strings.Replace(arg, documented+"/", path+"/", 1)
	}
	return out
}
