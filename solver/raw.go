package solver

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	cminformers "github.com/cert-manager/cert-manager/pkg/client/informers/externalversions"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// challengeKeyIndex indexes Challenges by spec.key, the TXT value cert-manager sends.
const challengeKeyIndex = "spec.key"

// defaultAccountKeySecretKey is cert-manager's default key in privateKeySecretRef.
const defaultAccountKeySecretKey = "tls.key"

// challengeIndexers index Challenges by spec.key (shared with the cache
// memory benchmark).
var challengeIndexers = cache.Indexers{challengeKeyIndex: func(obj any) ([]string, error) {
	ch, ok := obj.(*cmacme.Challenge)
	if !ok {
		return nil, nil
	}
	return []string{ch.Spec.Key}, nil
}}

// challengeLookupFields keeps of a Challenge only what find and credentialsFor read.
// It builds a new Challenge rather than clearing fields in place (client-go
// allows either), so a field cert-manager adds to Challenges later is not cached.
func challengeLookupFields(obj any) (any, error) {
	ch, ok := obj.(*cmacme.Challenge)
	if !ok {
		return obj, nil
	}
	return &cmacme.Challenge{
		ObjectMeta: metav1.ObjectMeta{
			Name:            ch.Name,
			Namespace:       ch.Namespace,
			UID:             ch.UID,
			ResourceVersion: ch.ResourceVersion,
		},
		Spec: cmacme.ChallengeSpec{
			Type:      ch.Spec.Type,
			DNSName:   ch.Spec.DNSName,
			Key:       ch.Spec.Key,
			Token:     ch.Spec.Token,
			IssuerRef: ch.Spec.IssuerRef,
		},
	}, nil
}

// rawCredentials are RAW mode's extra arguments.
type rawCredentials struct {
	Token   string
	KeyAuth string
}

// challengeFinder recovers the token and key authorization that cert-manager
// does not send to webhooks. It watches Challenges (never Secrets) and reads
// an issuer's ACME account key Secret with a direct GET.
type challengeFinder struct {
	challenges cache.SharedIndexInformer
	cm         cmclient.Interface
	kube       kubernetes.Interface
}

func newChallengeFinder(cm cmclient.Interface, kube kubernetes.Interface, log logr.Logger, stop <-chan struct{}) (*challengeFinder, error) {
	factory := cminformers.NewSharedInformerFactory(cm, 0)
	informer := factory.Acme().V1().Challenges().Informer()
	// The informer caches every Challenge of the cluster; most of each one
	// (managedFields, the issuer's solver block, status) is never read.
	if err := informer.SetTransform(challengeLookupFields); err != nil {
		return nil, err
	}
	if err := informer.AddIndexers(challengeIndexers); err != nil {
		return nil, err
	}
	if err := informer.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		log.Error(err, "watching Challenges failed; RAW mode needs list and watch on challenges.acme.cert-manager.io")
	}); err != nil {
		return nil, err
	}
	factory.Start(stop)
	return &challengeFinder{challenges: informer, cm: cm, kube: kube}, nil
}

// find returns the credentials behind (dnsName, key) for an issuer whose
// resources live in resourceNamespace, checked against key before anything runs.
func (f *challengeFinder) find(ctx context.Context, dnsName, key, resourceNamespace string) (rawCredentials, error) {
	if !cache.WaitForCacheSync(ctx.Done(), f.challenges.HasSynced) {
		return rawCredentials{}, errors.New("RAW mode: the Challenge cache did not sync in time (can the webhook list and watch challenges.acme.cert-manager.io?)")
	}
	objs, err := f.challenges.GetIndexer().ByIndex(challengeKeyIndex, key)
	if err != nil {
		return rawCredentials{}, err
	}
	domain := rawDomain(dnsName)
	var lastErr error
	for _, obj := range objs {
		ch, ok := obj.(*cmacme.Challenge)
		if !ok || ch.Spec.Type != cmacme.ACMEChallengeTypeDNS01 || rawDomain(ch.Spec.DNSName) != domain {
			continue
		}
		if isNamespacedIssuer(ch.Spec.IssuerRef.Kind) && ch.Namespace != resourceNamespace {
			continue
		}
		creds, err := f.credentialsFor(ctx, ch, resourceNamespace)
		if err == nil {
			return creds, nil
		}
		lastErr = err
	}
	if lastErr != nil {
		return rawCredentials{}, lastErr
	}
	return rawCredentials{}, fmt.Errorf("RAW mode: no DNS-01 Challenge for %s with this key was found yet; cert-manager will retry", domain)
}

func isNamespacedIssuer(kind string) bool {
	return kind == "" || kind == "Issuer"
}

func (f *challengeFinder) credentialsFor(ctx context.Context, ch *cmacme.Challenge, resourceNamespace string) (rawCredentials, error) {
	if err := validateToken(ch.Spec.Token); err != nil {
		return rawCredentials{}, fmt.Errorf("RAW mode: the token of Challenge %s/%s %w; refusing to run the program", ch.Namespace, ch.Name, err)
	}
	ref := ch.Spec.IssuerRef
	if ref.Group != "" && ref.Group != "cert-manager.io" {
		return rawCredentials{}, fmt.Errorf("RAW mode: Challenge %s/%s belongs to issuer group %q, not an ACME issuer of cert-manager.io", ch.Namespace, ch.Name, ref.Group)
	}
	var acme *cmacme.ACMEIssuer
	switch {
	case isNamespacedIssuer(ref.Kind):
		issuer, err := f.cm.CertmanagerV1().Issuers(ch.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return rawCredentials{}, fmt.Errorf("RAW mode: reading Issuer %s/%s: %w", ch.Namespace, ref.Name, describeAPIError(err))
		}
		acme = issuer.Spec.ACME
	case ref.Kind == "ClusterIssuer":
		issuer, err := f.cm.CertmanagerV1().ClusterIssuers().Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return rawCredentials{}, fmt.Errorf("RAW mode: reading ClusterIssuer %s: %w", ref.Name, describeAPIError(err))
		}
		acme = issuer.Spec.ACME
	default:
		return rawCredentials{}, fmt.Errorf("RAW mode: Challenge %s/%s has issuer kind %q", ch.Namespace, ch.Name, ref.Kind)
	}
	if acme == nil {
		return rawCredentials{}, fmt.Errorf("RAW mode: %s %q is not an ACME issuer", ref.Kind, ref.Name)
	}
	secretName, secretKey := acme.PrivateKey.Name, acme.PrivateKey.Key
	if secretKey == "" {
		secretKey = defaultAccountKeySecretKey
	}
	secret, err := f.kube.CoreV1().Secrets(resourceNamespace).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		return rawCredentials{}, fmt.Errorf("RAW mode: ACME account key: %w", describeSecretError(resourceNamespace, secretName, err))
	}
	pemKey, ok := secret.Data[secretKey]
	if !ok {
		return rawCredentials{}, fmt.Errorf("RAW mode: ACME account key Secret %s/%s has no key %q", resourceNamespace, secretName, secretKey)
	}
	keyAuth, err := keyAuthorization(ch.Spec.Token, pemKey)
	if err != nil {
		return rawCredentials{}, fmt.Errorf("RAW mode: ACME account key in Secret %s/%s: %w", resourceNamespace, secretName, err)
	}
	if !matchesKey(keyAuth, ch.Spec.Key) {
		return rawCredentials{}, fmt.Errorf("RAW mode: the key authorization recovered for %s does not match the requested key; refusing to run the program", ch.Spec.DNSName)
	}
	return rawCredentials{Token: ch.Spec.Token, KeyAuth: keyAuth}, nil
}

// keyAuthorization is token + "." + base64url(RFC 7638 SHA-256 thumbprint of
// the account's public key), RFC 8555 section 8.1.
func keyAuthorization(token string, accountKeyPEM []byte) (string, error) {
	signer, err := pki.DecodePrivateKeyBytes(accountKeyPEM)
	if err != nil {
		return "", err
	}
	thumbprint, err := (&jose.JSONWebKey{Key: signer.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("computing the JWK thumbprint: %w", err)
	}
	return token + "." + base64.RawURLEncoding.EncodeToString(thumbprint), nil
}

// dns01Value is the TXT value for a key authorization, RFC 8555 section 8.4.
func dns01Value(keyAuth string) string {
	sum := sha256.Sum256([]byte(keyAuth))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func matchesKey(keyAuth, key string) bool {
	return subtle.ConstantTimeCompare([]byte(dns01Value(keyAuth)), []byte(key)) == 1
}

// describeAPIError says what a failed read of an issuer means, keeping the
// API error as its cause.
func describeAPIError(err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return &explainedError{cause: err, msg: "not found"}
	case apierrors.IsForbidden(err):
		return &explainedError{cause: err, msg: "forbidden; RAW mode needs get on issuers and clusterissuers (chart: set by a RAW program)"}
	case errors.Is(err, context.DeadlineExceeded):
		return &explainedError{cause: err, msg: "timed out"}
	}
	return err
}
