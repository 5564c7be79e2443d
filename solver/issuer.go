package solver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// maxIssuerConfigBytes bounds an Issuer's webhook.config.
const maxIssuerConfigBytes = 16 << 10

// IssuerConfig is what an Issuer's webhook.config may say: which program, and
// which of its allowed variables to fill from the Issuer's own Secrets.
type IssuerConfig struct {
	// Program names a program of the solver config; empty means its default.
	Program string `json:"program,omitempty"`
	// Env maps variable names the program allows (secretEnv) to Secret keys.
	Env map[string]EnvSource `json:"env,omitempty"`
}

// EnvSource says where a variable's value comes from.
type EnvSource struct {
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef"`
}

// SecretKeySelector names a key of a Secret in the Issuer's resource namespace.
type SecretKeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// ParseIssuerConfig decodes an Issuer's webhook.config strictly: only the keys
// "program" and "env", spelled exactly and each once, and each env value
// exactly {"secretKeyRef": {"name": ..., "key": ...}}.
func ParseIssuerConfig(raw []byte) (IssuerConfig, error) {
	var cfg IssuerConfig
	if len(raw) > maxIssuerConfigBytes {
		return cfg, fmt.Errorf("issuer config is %d bytes, more than the %d allowed", len(raw), maxIssuerConfigBytes)
	}
	trimmed := strings.TrimSpace(string(raw))
	if trimmed == "" || trimmed == "null" {
		return cfg, nil
	}
	data := []byte(trimmed)
	if err := checkExactKeys(data, reflect.TypeFor[IssuerConfig]()); err != nil {
		return cfg, fmt.Errorf("issuer config: %w", describeIssuerKeyError(err))
	}
	// Each variable's source is decoded on its own, so that a refusal names
	// the variable.
	var sources struct {
		Program string                     `json:"program"`
		Env     map[string]json.RawMessage `json:"env"`
	}
	if err := decodeJSON(data, &sources); err != nil {
		return cfg, fmt.Errorf("issuer config: %w", err)
	}
	cfg.Program = sources.Program
	if sources.Env != nil {
		cfg.Env = make(map[string]EnvSource, len(sources.Env))
	}
	names := slices.Sorted(maps.Keys(sources.Env))
	for _, name := range names {
		var src EnvSource
		if err := decodeJSON(sources.Env[name], &src); err != nil {
			return cfg, fmt.Errorf("issuer config: env %s: %w", name, describeSourceError(err))
		}
		cfg.Env[name] = src
	}
	for _, name := range names {
		ref := cfg.Env[name].SecretKeyRef
		switch {
		case ref == nil:
			return cfg, fmt.Errorf("issuer config: env %s: needs secretKeyRef with name and key", name)
		case ref.Name == "" || ref.Key == "":
			return cfg, fmt.Errorf("issuer config: env %s: secretKeyRef needs both name and key", name)
		}
	}
	return cfg, nil
}

// describeIssuerKeyError says, for a key an Issuer may not write, where it
// is and, for an unknown key, what may be written there instead; the
// *KeyError stays the cause.
func describeIssuerKeyError(err error) error {
	var keyErr *KeyError
	if !errors.As(err, &keyErr) {
		return err
	}
	var where, allowed string
	switch path := keyErr.Path; len(path) {
	case 0:
		allowed = `an Issuer may set only "program" and "env", spelled exactly`
	case 2:
		where, allowed = fmt.Sprintf("env %s: ", path[1]), "a variable is set only by secretKeyRef with name and key"
	case 3:
		where, allowed = fmt.Sprintf("env %s: secretKeyRef: ", path[1]), `secretKeyRef has only "name" and "key"`
	default:
		return err
	}
	if keyErr.Duplicate {
		return &explainedError{msg: fmt.Sprintf("%skey %q appears twice", where, keyErr.Key), cause: err}
	}
	return &explainedError{msg: fmt.Sprintf("%sunknown key %q; %s", where, keyErr.Key, allowed), cause: err}
}

// describeSourceError says where in a variable's source a value of the wrong
// kind is. A source that is not a mapping at all is most likely the value
// itself, which an Issuer cannot give: the message never repeats it, since
// it may be a secret.
func describeSourceError(err error) error {
	var mismatch *typeMismatchError
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &mismatch) || !errors.As(err, &typeErr) {
		return err
	}
	if typeErr.Field == "" {
		return &explainedError{cause: err, msg: "expected secretKeyRef with name and key, got " + mismatch.got +
			"; an Issuer takes values only from Secrets, literal values belong in the solver config (the program's env)"}
	}
	return &explainedError{cause: err, msg: fmt.Sprintf("%s: expected %s, got %s", strings.ReplaceAll(typeErr.Field, ".", ": "), mismatch.want, mismatch.got)}
}

// selectProgram finds the program an Issuer chose and checks that every
// variable it fills is one the program allows.
func (c *Config) selectProgram(ic IssuerConfig) (*Program, error) {
	name := ic.Program
	if name == "" {
		if c.DefaultProgram == "" {
			return nil, fmt.Errorf(`issuer config names no program and the solver config has no defaultProgram; set "program" to one of: %s`, strings.Join(c.ProgramNames(), ", "))
		}
		name = c.DefaultProgram
	}
	p := c.Programs[name]
	if p == nil {
		return nil, fmt.Errorf("issuer config: program %q is not configured; choose one of: %s", name, strings.Join(c.ProgramNames(), ", "))
	}
	for _, env := range slices.Sorted(maps.Keys(ic.Env)) {
		if slices.Contains(p.SecretEnv, env) {
			continue
		}
		if len(p.SecretEnv) == 0 {
			return nil, fmt.Errorf("issuer config: env %s is not allowed: program %q allows no Secret-backed variables", env, p.Name)
		}
		return nil, fmt.Errorf("issuer config: env %s is not allowed for program %q; allowed: %s", env, p.Name, strings.Join(p.SecretEnv, ", "))
	}
	return p, nil
}

// readSecretEnv reads each variable's Secret key from namespace, and only from
// there: an Issuer can never reach another namespace's Secrets.
func readSecretEnv(ctx context.Context, kube kubernetes.Interface, namespace string, env map[string]EnvSource) (map[string]string, error) {
	values := make(map[string]string, len(env))
	secrets := map[string]map[string][]byte{}
	for _, name := range slices.Sorted(maps.Keys(env)) {
		ref := env[name].SecretKeyRef
		data, ok := secrets[ref.Name]
		if !ok {
			secret, err := kube.CoreV1().Secrets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", name, describeSecretError(namespace, ref.Name, err))
			}
			data = secret.Data
			secrets[ref.Name] = data
		}
		value, ok := data[ref.Key]
		if !ok {
			return nil, fmt.Errorf("env %s: Secret %s/%s has no key %q", name, namespace, ref.Name, ref.Key)
		}
		if limit := runner.MaxEnvValue(name); len(value) > limit {
			return nil, fmt.Errorf("env %s: Secret %s/%s key %q holds %d bytes; an environment variable holds at most %d bytes besides its name %s (Linux's MAX_ARG_STRLEN, 128 KiB)",
				name, namespace, ref.Name, ref.Key, len(value), limit, name)
		}
		values[name] = string(value)
	}
	return values, nil
}

// describeSecretError says what a failed Secret read means for the Issuer's
// author, keeping the API error as its cause.
func describeSecretError(namespace, name string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return &explainedError{cause: err, msg: fmt.Sprintf("secret %s/%s not found", namespace, name)}
	case apierrors.IsForbidden(err):
		return &explainedError{cause: err, msg: fmt.Sprintf("the webhook may not read Secret %s/%s; grant its service account get on secrets in %s (chart: secretsAccess)", namespace, name, namespace)}
	case errors.Is(err, context.DeadlineExceeded):
		return &explainedError{cause: err, msg: fmt.Sprintf("reading Secret %s/%s timed out", namespace, name)}
	}
	return fmt.Errorf("reading Secret %s/%s: %w", namespace, name, err)
}
