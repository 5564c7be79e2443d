//go:build !certmanager_v1_19

package main

import (
	"time"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
)

// certificateOptions retries a failed CertificateRequest within seconds, not
// cert-manager's hour, so a test's fault-then-fix scenario ends in minutes.
func certificateOptions() controllerpkg.CertificateOptions {
	return controllerpkg.CertificateOptions{
		CertificateRequestMinimumBackoffDuration: time.Second,
		CertificateRequestMaximumBackoffDuration: 10 * time.Second,
	}
}
