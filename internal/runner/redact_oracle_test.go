package runner

import (
	"context"
	"strings"
	"testing"
)

// TestRedactionIsNoOracle is a tenant guessing an admin's passEnv value one
// character at a time: its Secret value is "token " plus the guessed prefix,
// and the program prints `error: token $API_TOKEN rejected`. If masking the
// tenant's value could change how the admin's value is masked, the status
// (and the logged output) would differ between a right and a wrong guess.
func TestRedactionIsNoOracle(t *testing.T) {
	const admin = "ghp_SuperSecretAdminToken123"
	p := &Program{Name: "reject-token", Path: testProgram(t, "reject-token.sh"), PassEnv: []string{"API_TOKEN"}, SecretEnv: []string{"TENANT_HINT"}}
	status := func(hint string) (string, string) {
		logs := &logBuffer{}
		env := mustBuildEnvironment(t, p, Invocation{Action: ActionPresent, Secrets: map[string]string{"TENANT_HINT": hint}}, []string{"API_TOKEN=" + admin})
		_, err := runProgram(context.Background(), job{program: p, action: ActionPresent, args: []string{"present"}, env: env, runsDir: t.TempDir(), log: logs.logger()})
		return errString(err), logs.String()
	}
	// The attacker's loop: keep a character when the status tells it apart.
	recovered := ""
	for i := range len(admin) {
		right := admin[i]
		wrong := byte('#')
		rightStatus, rightLog := status("token " + recovered + string(right))
		wrongStatus, wrongLog := status("token " + recovered + string(wrong))
		if rightStatus != wrongStatus || rightLog != wrongLog {
			t.Errorf("guess %q: status %q for the right guess, %q for a wrong one", admin[:i+1], rightStatus, wrongStatus)
			recovered += string(right)
			continue
		}
		break
	}
	if recovered != "" {
		t.Errorf("the guessing loop recovered %q of the admin's value", recovered)
	}
	want := `program "reject-token" present exited with status 1: error: token [REDACTED] rejected`
	if got, _ := status("token " + admin[:10]); got != want {
		t.Errorf("status = %q, want %q", got, want)
	}
	if got, log := status("token gh"); strings.Contains(got, admin) || strings.Contains(log, admin) {
		t.Errorf("admin value shown: %q\n%s", got, log)
	}
}
