package solver

import (
	"context"
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestAPIErrorsKeepTheirCause checks the messages an Issuer's author reads for
// failed Secret and issuer reads, and that each still answers
// apierrors.IsNotFound, IsForbidden and errors.Is as its cause does.
func TestAPIErrorsKeepTheirCause(t *testing.T) {
	secrets := schema.GroupResource{Resource: "secrets"}
	issuers := schema.GroupResource{Group: "cert-manager.io", Resource: "issuers"}
	refused := errors.New("connection refused")
	tests := map[string]struct {
		got   error
		want  string
		cause func(error) bool
	}{
		"secret not found": {
			got:   describeSecretError("team-a", "tsig", apierrors.NewNotFound(secrets, "tsig")),
			want:  "secret team-a/tsig not found",
			cause: apierrors.IsNotFound,
		},
		"secret forbidden": {
			got:   describeSecretError("team-a", "tsig", apierrors.NewForbidden(secrets, "tsig", errors.New("no RBAC"))),
			want:  "the webhook may not read Secret team-a/tsig; grant its service account get on secrets in team-a (chart: secretsAccess)",
			cause: apierrors.IsForbidden,
		},
		"secret read timed out": {
			got:   describeSecretError("team-a", "tsig", fmt.Errorf("get: %w", context.DeadlineExceeded)),
			want:  "reading Secret team-a/tsig timed out",
			cause: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		},
		"secret read failed otherwise": {
			got:   describeSecretError("team-a", "tsig", refused),
			want:  "reading Secret team-a/tsig: connection refused",
			cause: func(err error) bool { return errors.Is(err, refused) },
		},
		"issuer not found": {
			got:   describeAPIError(apierrors.NewNotFound(issuers, "letsencrypt")),
			want:  "not found",
			cause: apierrors.IsNotFound,
		},
		"issuer forbidden": {
			got:   describeAPIError(apierrors.NewForbidden(issuers, "letsencrypt", errors.New("no RBAC"))),
			want:  "forbidden; RAW mode needs get on issuers and clusterissuers (chart: set by a RAW program)",
			cause: apierrors.IsForbidden,
		},
		"issuer read timed out": {
			got:   describeAPIError(context.DeadlineExceeded),
			want:  "timed out",
			cause: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if errString(tc.got) != tc.want {
				t.Errorf("error = %q, want %q", errString(tc.got), tc.want)
			}
			// As readSecretEnv and the RAW mode wrap them.
			if wrapped := fmt.Errorf("env TSIG_SECRET: %w", tc.got); !tc.cause(wrapped) {
				t.Errorf("%q lost its cause", wrapped)
			}
		})
	}
}
