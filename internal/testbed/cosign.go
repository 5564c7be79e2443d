package testbed

import (
	"os"
	"os/exec"
	"path/filepath"
)

// CosignPassword protects the test key pairs CosignKeyPair makes.
const CosignPassword = "test"

// CosignKeyPair is a cosign key pair made in a directory of its own, as the
// documentation makes one (`cosign generate-key-pair`).
type CosignKeyPair struct {
	// Private and Public are the paths of cosign.key and cosign.pub.
	Private, Public string
}

// NewCosignKeyPair makes a key pair with cosign under dir, its private key
// protected by CosignPassword.
func NewCosignKeyPair(t TB, cosign, dir string) CosignKeyPair {
	t.Helper()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatalf("%v", err)
	}
	gen := exec.Command(cosign, "generate-key-pair")
	gen.Dir = keys
	gen.Env = append(os.Environ(), "COSIGN_PASSWORD="+CosignPassword)
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	return CosignKeyPair{Private: filepath.Join(keys, "cosign.key"), Public: filepath.Join(keys, "cosign.pub")}
}

// VerifyEnv is the environment for cosign verifying with the pair's public
// key against a registry whose certificate registryCA signed, with home as
// HOME. Naming a Rekor key (any: with --insecure-ignore-tlog no log is
// checked) keeps cosign from fetching Sigstore's trusted root, which this
// network cannot reach.
func (k CosignKeyPair) VerifyEnv(registryCA, home string) []string {
	return append(os.Environ(), "SSL_CERT_FILE="+registryCA, "HOME="+home, "SIGSTORE_REKOR_PUBLIC_KEY="+k.Public)
}
