//go:build certmanager_v1_19

package main

import controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"

// certificateOptions is cert-manager v1.19's default: that release has no
// CertificateRequest backoff options, so only a first issuance is quick. The
// compatibility test (go.v1.19.mod) issues once and needs no more.
func certificateOptions() controllerpkg.CertificateOptions {
	return controllerpkg.CertificateOptions{}
}
