package runner

import (
	"cmp"
	"slices"
	"strings"
)

// redactionMark replaces every stretch of output that secret values cover.
const redactionMark = "[REDACTED]"

// redactor hides secret values in a program's output, in two stages: the
// admin's values (passEnv, lego's environment) first, then the tenant's
// (Secret-backed variables) in what the first stage left. A tenant's value
// therefore never meets an admin's value, only its mark, and what anyone sees
// is a function of the output with the admin's values already masked: no
// value a tenant chooses changes how an admin's value is masked, so a
// tenant cannot learn an admin's value a character at a time by watching
// which of its guesses widen the mask.
type redactor struct {
	admin, tenant valueSet
	// longest is the length of the longest value of either stage.
	longest int
}

func newRedactor(admin, tenant []string) redactor {
	r := redactor{admin: newValueSet(admin), tenant: newValueSet(tenant)}
	r.longest = max(r.admin.longest, r.tenant.longest)
	return r
}

// redact replaces each stretch of s that secret values cover with the mark.
func (r redactor) redact(s string) string {
	out, _ := r.redactPrefix(s, len(s))
	return out
}

// redactPrefix redacts s and returns its first keep bytes; a masked stretch
// that starts before keep is kept whole, whatever its length. It also returns
// how many bytes of s the result stands for.
func (r redactor) redactPrefix(s string, keep int) (string, int) {
	if len(r.admin.values) == 0 && len(r.tenant.values) == 0 {
		return s[:keep], keep
	}
	text := r.tenant.mask(r.admin.mask([]piece{{text: s, raw: len(s)}}))
	var b strings.Builder
	used := 0
	for _, p := range text {
		if used >= keep {
			break
		}
		if !p.masked && used+p.raw > keep {
			b.WriteString(p.text[:keep-used])
			used = keep
			break
		}
		b.WriteString(p.text)
		used += p.raw
	}
	return b.String(), used
}

// piece is a stretch of partly redacted text: plain text, or a mark standing
// for raw bytes of the original.
type piece struct {
	text   string
	raw    int
	masked bool
}

// valueSet is one stage's values, trimmed and split into lines, each at
// least minSecretLength long.
type valueSet struct {
	values  []string
	longest int
}

func newValueSet(secrets []string) valueSet {
	var v valueSet
	seen := map[string]bool{}
	add := func(s string) {
		// Trimmed: a Secret created from a file often ends in a newline
		// (cert-manager#1385) that the program's output does not repeat.
		s = strings.TrimSpace(s)
		if len(s) < minSecretLength || seen[s] {
			return
		}
		seen[s] = true
		v.values = append(v.values, s)
		v.longest = max(v.longest, len(s))
	}
	for _, s := range secrets {
		add(s)
		// Output is redacted line by line, so a multi-line value shows up a line at a time.
		for line := range strings.Lines(s) {
			add(line)
		}
	}
	return v
}

// mask replaces with one mark each stretch of the pieces' text that the
// values cover, overlapping occurrences merged; a stretch that reaches into
// an earlier mark takes that mark in whole.
func (v valueSet) mask(pieces []piece) []piece {
	if len(v.values) == 0 {
		return pieces
	}
	var joined strings.Builder
	for _, p := range pieces {
		joined.WriteString(p.text)
	}
	spans := v.covered(joined.String())
	if len(spans) == 0 {
		return pieces
	}
	out := make([]piece, 0, len(pieces)+2*len(spans))
	mark := -1 // index in out of the mark standing for spans[si], if begun
	si, pos := 0, 0
	for _, p := range pieces {
		start, end := pos, pos+len(p.text)
		pos = end
		for cut := start; cut < end; {
			for si < len(spans) && spans[si].end <= cut {
				si, mark = si+1, -1
			}
			if si == len(spans) || spans[si].start >= end {
				if p.masked {
					out = append(out, p)
				} else {
					out = append(out, plainPiece(p.text[cut-start:]))
				}
				break
			}
			sp := &spans[si]
			if p.masked {
				sp.end = max(sp.end, end)
				out, mark = growMark(out, mark, p.raw)
				break
			}
			if sp.start > cut {
				out = append(out, plainPiece(p.text[cut-start:sp.start-start]))
				cut = sp.start
			}
			stop := min(sp.end, end)
			out, mark = growMark(out, mark, stop-cut)
			cut = stop
		}
	}
	return out
}

func plainPiece(text string) piece { return piece{text: text, raw: len(text)} }

// growMark adds raw bytes to the mark at index mark, beginning a mark if
// there is none yet, and returns where it is.
func growMark(out []piece, mark, raw int) ([]piece, int) {
	if mark < 0 {
		out = append(out, piece{text: redactionMark, masked: true})
		mark = len(out) - 1
	}
	out[mark].raw += raw
	return out, mark
}

// span is the byte range [start, end) of a string.
type span struct{ start, end int }

// covered returns the stretches of s that the values cover, in order,
// overlapping occurrences merged into one.
func (v valueSet) covered(s string) []span {
	var found []span
	for _, value := range v.values {
		for i := 0; ; {
			j := strings.Index(s[i:], value)
			if j < 0 {
				break
			}
			found = append(found, span{i + j, i + j + len(value)})
			i += j + 1
		}
	}
	slices.SortFunc(found, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	merged := found[:0]
	for _, sp := range found {
		if n := len(merged); n > 0 && sp.start < merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, sp.end)
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}
