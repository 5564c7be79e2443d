// Package docs checks the project's Markdown: every relative link resolves.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

// link is a Markdown inline link's target: [text](target), without a title.
var link = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestRelativeLinksResolve checks each relative link of the README, the
// CHANGELOG, docs/ and the chart's README: its file exists and, with a
// #fragment into Markdown, a heading there has that GitHub anchor.
func TestRelativeLinksResolve(t *testing.T) {
	root := testbed.RepoRoot(t)
	files := []string{"README.md", "CHANGELOG.md", "charts/cert-manager-webhook-exec/README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, file := range files {
		for _, problem := range brokenLinks(t, root, file) {
			t.Error(problem)
		}
		checked++
	}
	if checked < 8 {
		t.Fatalf("checked %d files; the README and docs/ should give more", checked)
	}
}

// brokenLinks returns "file:line: ..." for each relative link of file (a
// path from root) that does not resolve.
func brokenLinks(t *testing.T, root, file string) []string {
	t.Helper()
	text := readFile(t, filepath.Join(root, file))
	var problems []string
	inFence := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		for _, m := range link.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, fragment, _ := strings.Cut(target, "#")
			resolved := filepath.Join(root, file)
			if path != "" {
				resolved = filepath.Join(filepath.Dir(resolved), path)
			}
			if _, err := os.Stat(resolved); err != nil {
				problems = append(problems, file+":"+strconv.Itoa(i+1)+": "+target+": no such file")
				continue
			}
			if fragment != "" && strings.HasSuffix(resolved, ".md") && !anchors(readFile(t, resolved))[fragment] {
				problems = append(problems, file+":"+strconv.Itoa(i+1)+": "+target+": no heading with that anchor")
			}
		}
	}
	return problems
}

// anchors returns the GitHub anchors of a Markdown text's headings, with
// the -1, -2 suffixes GitHub gives repeated ones.
func anchors(text string) map[string]bool {
	found := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inFence = !inFence
			continue
		}
		heading, ok := strings.CutPrefix(line, "#")
		if inFence || !ok {
			continue
		}
		heading = strings.TrimLeft(heading, "#")
		if !strings.HasPrefix(heading, " ") {
			continue
		}
		slug := anchor(heading)
		if n := seen[slug]; n > 0 {
			found[slug+"-"+strconv.Itoa(n)] = true
		} else {
			found[slug] = true
		}
		seen[slug]++
	}
	return found
}

// anchor is GitHub's anchor of a heading's text: lower case, letters (of
// any script, with their marks), digits, '-' and '_' kept, spaces turned into
// '-', everything else dropped, non-ASCII punctuation such as an arrow or a
// dash too.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
