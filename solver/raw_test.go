package solver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"reflect"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"golang.org/x/crypto/acme"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
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

// challengeWebhookConfig is an Issuer's config for this webhook, as
// cert-manager copies it into each of the issuer's Challenges.
const challengeWebhookConfig = `{"program":"lego-raw","env":{` +
	`"API_TOKEN":{"secretKeyRef":{"name":"dns-api","key":"token"}},` +
	`"API_ENDPOINT":{"secretKeyRef":{"name":"dns-api","key":"endpoint"}},` +
	`"TSIG_KEY_NAME":{"secretKeyRef":{"name":"tsig-credentials","key":"tsig.keyname"}},` +
	`"TSIG_SECRET":{"secretKeyRef":{"name":"tsig-credentials","key":"tsig.secret"}}}}`

// challengeAsCertManagerMakesIt is a DNS-01 Challenge with what cert-manager's
// controllers give one: an owner Order, a finalizer, the issuer's solver block
// with its webhook config, and a status.
func challengeAsCertManagerMakesIt(namespace, name string) *cmacme.Challenge {
	digest := func(s string) string {
		sum := sha256.Sum256([]byte(namespace + "/" + name + s))
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}
	isController := true
	return &cmacme.Challenge{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:  namespace,
			Name:       name,
			Finalizers: []string{cmacme.ACMEDomainQualifiedFinalizer},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "acme.cert-manager.io/v1", Kind: "Order", Name: name + "-order",
				UID: "9f6a1d2e-6c1b-4f3e-9a57-3b1f0c2d4e5f", Controller: &isController, BlockOwnerDeletion: &isController,
			}},
		},
		Spec: cmacme.ChallengeSpec{
			URL:              "https://acme-v02.api.letsencrypt.org/acme/chall/1234567890/" + digest("url"),
			AuthorizationURL: "https://acme-v02.api.letsencrypt.org/acme/authz/1234567890/" + digest("authz"),
			DNSName:          name + ".example.com",
			Type:             cmacme.ACMEChallengeTypeDNS01,
			Token:            digest("token"),
			Key:              digest("key"),
			Solver: cmacme.ACMEChallengeSolver{
				Selector: &cmacme.CertificateDNSNameSelector{DNSZones: []string{"example.com"}},
				DNS01: &cmacme.ACMEChallengeSolverDNS01{Webhook: &cmacme.ACMEIssuerDNS01ProviderWebhook{
					GroupName: "acme.example.com", SolverName: "exec",
					Config: &apiextensionsv1.JSON{Raw: []byte(challengeWebhookConfig)},
				}},
			},
			IssuerRef: cmmeta.IssuerReference{Name: "letsencrypt-raw", Kind: "ClusterIssuer", Group: "cert-manager.io"},
		},
		Status: cmacme.ChallengeStatus{
			Processing: true, Presented: true, State: cmacme.Pending,
			Reason: "Waiting for DNS-01 challenge propagation: DNS record for \"" + name + ".example.com\" not yet propagated",
		},
	}
}

func TestChallengeLookupFields(t *testing.T) {
	fromAPIServer := func() any {
		ch := challengeAsCertManagerMakesIt("team-a", "www")
		ch.TypeMeta = metav1.TypeMeta{APIVersion: "acme.cert-manager.io/v1", Kind: "Challenge"}
		ch.UID, ch.ResourceVersion, ch.Generation = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", "4711", 1
		ch.CreationTimestamp = metav1.NewTime(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
		ch.Labels = map[string]string{"app": "www"}
		ch.Annotations = map[string]string{"example.com/note": "copied from the Certificate"}
		ch.ManagedFields = []metav1.ManagedFieldsEntry{{
			Manager: "cert-manager-challenges", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "acme.cert-manager.io/v1",
			FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:solver":{}}}`),
		}}
		return ch
	}
	www := challengeAsCertManagerMakesIt("team-a", "www")
	stripped := func() any {
		return &cmacme.Challenge{
			ObjectMeta: metav1.ObjectMeta{Name: "www", Namespace: "team-a", UID: "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", ResourceVersion: "4711"},
			Spec: cmacme.ChallengeSpec{
				Type:      cmacme.ACMEChallengeTypeDNS01,
				DNSName:   "www.example.com",
				Key:       www.Spec.Key,
				Token:     www.Spec.Token,
				IssuerRef: cmmeta.IssuerReference{Name: "letsencrypt-raw", Kind: "ClusterIssuer", Group: "cert-manager.io"},
			},
		}
	}
	tests := map[string]struct{ in, want func() any }{
		"Challenge as the API server sends it": {in: fromAPIServer, want: stripped},
		"Challenge already stripped":           {in: stripped, want: stripped},
		"tombstone of a deleted Challenge": {
			in:   func() any { return cache.DeletedFinalStateUnknown{Key: "team-a/www", Obj: fromAPIServer()} },
			want: func() any { return cache.DeletedFinalStateUnknown{Key: "team-a/www", Obj: fromAPIServer()} },
		},
		"not a Challenge": {
			in:   func() any { return &cmacme.Order{ObjectMeta: metav1.ObjectMeta{Name: "www-order"}} },
			want: func() any { return &cmacme.Order{ObjectMeta: metav1.ObjectMeta{Name: "www-order"}} },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := tc.in()
			got, err := challengeLookupFields(in)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.want(); !reflect.DeepEqual(got, want) {
				t.Errorf("kept\n%s\nwant\n%s", asJSON(t, got), asJSON(t, want))
			}
			if !reflect.DeepEqual(in, tc.in()) {
				t.Errorf("changed its argument to\n%s", asJSON(t, in))
			}
		})
	}
}

func asJSON(t testing.TB, v any) string {
	t.Helper()
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
