package docs

import "testing"

func TestAnchor(t *testing.T) {
	tests := map[string]string{
		"Quick start": "quick-start",
		"The admin's credentials: passEnv, extraEnv, rotation": "the-admins-credentials-passenv-extraenv-rotation",
		"Try it before deploying: `check`":                     "try-it-before-deploying-check",
		"Protecting the provider: rate limit and breaker":      "protecting-the-provider-rate-limit-and-breaker",
		"`make demo`":    "make-demo",
		"HA_mode (v1.2)": "ha_mode-v12",
		"README for the operator (1113 → 196 lines)": "readme-for-the-operator-1113--196-lines",
		"Déjà vu – the operator’s view":              "déjà-vu--the-operators-view",
	}
	for heading, want := range tests {
		if got := anchor(heading); got != want {
			t.Errorf("anchor(%q) = %q, want %q", heading, got, want)
		}
	}
}

func TestAnchorsNumberRepeats(t *testing.T) {
	got := anchors("# Install\n\n```sh\n# not a heading\n```\n## Install\n### Install\n#nospace\n")
	want := map[string]bool{"install": true, "install-1": true, "install-2": true}
	if len(got) != len(want) {
		t.Fatalf("anchors = %v, want %v", got, want)
	}
	for a := range want {
		if !got[a] {
			t.Errorf("anchors = %v, want %v", got, want)
		}
	}
}
