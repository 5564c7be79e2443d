package solver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/acme"
)

func pemKey(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}
	t.Fatalf("unsupported key %T", key)
	return nil
}

// TestKeyAuthorization checks go-jose's thumbprint against x/crypto/acme's,
// an independent implementation, for real RSA and ECDSA account keys.
func TestKeyAuthorization(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
	for name, key := range map[string]crypto.Signer{"RSA 2048": rsaKey, "ECDSA P-256": ecKey, "ECDSA P-384": ec384} {
		t.Run(name, func(t *testing.T) {
			thumb, err := acme.JWKThumbprint(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			want := token + "." + thumb
			got, err := keyAuthorization(token, pemKey(t, key))
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("keyAuthorization = %q, want %q", got, want)
			}
			client := &acme.Client{Key: key}
			record, err := client.DNS01ChallengeRecord(token)
			if err != nil {
				t.Fatal(err)
			}
			if !matchesKey(got, record) {
				t.Errorf("matchesKey(%q, %q) = false", got, record)
			}
			if matchesKey(got, strings.ToUpper(record)) || matchesKey(got+"x", record) {
				t.Error("matchesKey accepted a different key")
			}
		})
	}
}

func TestKeyAuthorizationMismatchedAccount(t *testing.T) {
	accountKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	record, err := (&acme.Client{Key: accountKey}).DNS01ChallengeRecord("token")
	if err != nil {
		t.Fatal(err)
	}
	keyAuth, err := keyAuthorization("token", pemKey(t, otherKey))
	if err != nil {
		t.Fatal(err)
	}
	if matchesKey(keyAuth, record) {
		t.Error("a key authorization from another account matched")
	}
}

func TestKeyAuthorizationBadKey(t *testing.T) {
	_, err := keyAuthorization("token", []byte("not a key"))
	want := "error decoding private key PEM block: no PEM data was found in given input"
	if errString(err) != want {
		t.Errorf("error = %q, want %q", errString(err), want)
	}
}

func TestValidateToken(t *testing.T) {
	tests := map[string]string{
		"evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA": "",
		"-starts-with-dash":                           "",
		strings.Repeat("a", maxTokenLength):           "",
		"":                                            "is empty",
		strings.Repeat("a", maxTokenLength+1):         "is 257 characters; an ACME token has at most 256",
		"tok\n$(id)":                                  `contains '\n'; an ACME token is base64url (RFC 8555 section 8.1)`,
		"tok`id`":                                     "contains '`'; an ACME token is base64url (RFC 8555 section 8.1)",
		"tok en":                                      "contains ' '; an ACME token is base64url (RFC 8555 section 8.1)",
		"padded=":                                     "contains '='; an ACME token is base64url (RFC 8555 section 8.1)",
		"tok.en":                                      "contains '.'; an ACME token is base64url (RFC 8555 section 8.1)",
		"tökén":                                       "contains 'ö'; an ACME token is base64url (RFC 8555 section 8.1)",
	}
	for token, want := range tests {
		if got := errString(validateToken(token)); got != want {
			t.Errorf("validateToken(%q) = %q, want %q", token, got, want)
		}
	}
}
