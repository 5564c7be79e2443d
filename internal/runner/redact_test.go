package runner

import "testing"

func TestRedactor(t *testing.T) {
	const admin = "ghp_SuperSecretAdminToken123"
	multiLine := "line-one-secret\nline-two-secret\n"
	tests := map[string]struct {
		admin, tenant []string
		in            string
		want          string
	}{
		"whole value":                          {nil, []string{"s3cr3t-value"}, "token=s3cr3t-value;", "token=[REDACTED];"},
		"short not redacted":                   {nil, []string{"abc"}, "abc", "abc"},
		"empty value":                          {[]string{""}, []string{""}, "plain output", "plain output"},
		"each line of a multi-line secret":     {[]string{multiLine}, nil, "got line-two-secret here", "got [REDACTED] here"},
		"repeated":                             {nil, []string{"s3cr3t-value"}, "s3cr3t-values3cr3t-value", "[REDACTED][REDACTED]"},
		"nothing":                              {[]string{"s3cr3t-value"}, nil, "plain output", "plain output"},
		"trailing newline (cert-manager#1385)": {nil, []string{"tsig-secret-value\n"}, "key tsig-secret-value used", "key [REDACTED] used"},
		"overlapping occurrences of one value": {[]string{"abcabc"}, nil, "xabcabcabcx", "x[REDACTED]x"},
		"two admin values overlapping":         {[]string{"admin-one-2", "one-2-admin"}, nil, "<admin-one-2-admin>", "<[REDACTED]>"},
		"two tenant values overlapping":        {nil, []string{"tenant-one-2", "one-2-tenant"}, "<tenant-one-2-tenant>", "<[REDACTED]>"},
		// A tenant's value never meets an admin's, only its mark: however it
		// overlaps, the admin's value is masked alone.
		"tenant value overlapping the start of an admin value": {
			[]string{admin}, []string{"token ghp_"}, "error: token ghp_SuperSecretAdminToken123 rejected", "error: token [REDACTED] rejected"},
		"tenant value overlapping the end of an admin value": {
			[]string{admin}, []string{"Token123 rejected"}, "error: token ghp_SuperSecretAdminToken123 rejected", "error: token [REDACTED] rejected"},
		"tenant value inside an admin value": {
			[]string{admin}, []string{"Secret"}, "error: token ghp_SuperSecretAdminToken123 rejected", "error: token [REDACTED] rejected"},
		"tenant value beside an admin value": {
			[]string{admin}, []string{"tenant-value"}, "tenant-value" + admin + " tenant-value", "[REDACTED][REDACTED] [REDACTED]"},
		"tenant value reaching into an admin's mark takes it whole": {
			[]string{admin}, []string{"token [REDAC"}, "error: token ghp_SuperSecretAdminToken123 rejected", "error: [REDACTED] rejected"},
		"tenant value that is the mark itself": {
			[]string{admin}, []string{"[REDACTED]"}, "error: token ghp_SuperSecretAdminToken123 rejected", "error: token [REDACTED] rejected"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := newRedactor(tc.admin, tc.tenant).redact(tc.in); got != tc.want {
				t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRedactPrefix(t *testing.T) {
	r := newRedactor([]string{"admin-secret"}, []string{"tenant-secret"})
	tests := map[string]struct {
		in       string
		keep     int
		want     string
		wantUsed int
	}{
		"cut in plain text":          {"abc admin-secret def", 2, "ab", 2},
		"cut inside an admin value":  {"abc admin-secret def", 6, "abc [REDACTED]", 16},
		"cut inside a tenant value":  {"tenant-secret def", 3, "[REDACTED]", 13},
		"cut after both":             {"admin-secret tenant-secret def", 28, "[REDACTED] [REDACTED] d", 28},
		"mark starting at the cut":   {"abc admin-secret", 4, "abc ", 4},
		"whole string, nothing kept": {"admin-secret", 0, "", 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, used := r.redactPrefix(tc.in, tc.keep)
			if got != tc.want || used != tc.wantUsed {
				t.Errorf("redactPrefix(%q, %d) = %q, %d; want %q, %d", tc.in, tc.keep, got, used, tc.want, tc.wantUsed)
			}
		})
	}
}
