package solver

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/miekg/dns"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// Action is a program's first argument.
type Action = runner.Action

// The actions of lego's exec contract.
const (
	ActionPresent = runner.ActionPresent
	ActionCleanUp = runner.ActionCleanUp
	ActionTimeout = runner.ActionTimeout
)

// challengeArgs is what the argv of a present or cleanup run is built from.
type challengeArgs struct {
	// FQDN and Value are default mode's record name (trailing dot) and TXT value.
	FQDN  string
	Value string
	// Domain, Token and KeyAuth are RAW mode's bare identifier, ACME token and key authorization.
	Domain  string
	Token   string
	KeyAuth string
}

// programArgs returns the arguments after the program path, exactly as lego's
// providers/dns/exec/exec.go builds them (v4.35.2, DNSProvider.run):
//
//	default: present|cleanup <FQDN> <value>
//	RAW:     present|cleanup -- <domain> <token> <keyAuth>
func programArgs(mode Mode, action Action, ch challengeArgs) []string {
	if mode == ModeRaw {
		return []string{string(action), "--", ch.Domain, ch.Token, ch.KeyAuth}
	}
	return []string{string(action), ch.FQDN, ch.Value}
}

// rawDomain is the bare ACME identifier lego passes in RAW mode: no "*." and
// no trailing dot.
func rawDomain(dnsName string) string {
	return strings.TrimSuffix(strings.TrimPrefix(dnsName, "*."), ".")
}

// challengeFQDN is the record name for default mode: cert-manager's resolved
// FQDN (CNAMEs followed), with its trailing dot.
func challengeFQDN(resolvedFQDN, dnsName string) string {
	if resolvedFQDN == "" {
		return dns.Fqdn("_acme-challenge." + rawDomain(dnsName))
	}
	return dns.Fqdn(resolvedFQDN)
}

// maxTXTValue is the longest single TXT string.
const maxTXTValue = 255

// validateName checks a DNS name from the request before it becomes an
// argument: letters, digits, '-', '_' and '.' only (cert-manager sends IDNs
// as A-labels, and no wildcard: see validateRequest), label and name lengths
// within RFC 1035. Nothing a script could mistake for syntax reaches it.
func validateName(field, name string) error {
	if name == "" {
		return fmt.Errorf("%s is empty", field)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	for _, r := range name {
		if r > 0x7f {
			return fmt.Errorf("%s %q contains %q; names must be ASCII (use the IDNA A-label, xn--...)", field, name, r)
		}
		if !isNameChar(r) {
			return fmt.Errorf("%s %q contains %q; only letters, digits, '-', '_' and '.' are accepted", field, name, r)
		}
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return fmt.Errorf("%s %q is not a valid DNS name (labels of at most 63 and names of at most 253 characters)", field, name)
	}
	return nil
}

func isAlphanumeric(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

func isNameChar(r rune) bool {
	return isAlphanumeric(r) || r == '-' || r == '_' || r == '.'
}

// validateValue checks the TXT value cert-manager asks us to present: a
// DNS-01 key is base64url; plain base64 is accepted too.
func validateValue(value string) error {
	if value == "" {
		return fmt.Errorf("key is empty")
	}
	if len(value) > maxTXTValue {
		return fmt.Errorf("key is %d bytes, longer than a TXT string (%d)", len(value), maxTXTValue)
	}
	for _, r := range value {
		if !isAlphanumeric(r) && !strings.ContainsRune("-_+/=", r) {
			return fmt.Errorf("key contains %q; a DNS-01 key is base64url", r)
		}
	}
	return nil
}

// maxTokenLength bounds a RAW-mode ACME token. RFC 8555 section 8.1 asks for
// at least 128 bits of entropy (22 base64url characters); CAs send 43.
const maxTokenLength = 256

// validateToken checks a RAW-mode token before it becomes an argument. The
// ACME server chose it and cert-manager copied it unchecked, and a tenant's
// Issuer may name an ACME server the tenant runs; the key check cannot catch
// a hostile token, as cert-manager computed the key from that same token.
func validateToken(token string) error {
	if token == "" {
		return errors.New("is empty")
	}
	if len(token) > maxTokenLength {
		return fmt.Errorf("is %d characters; an ACME token has at most %d", len(token), maxTokenLength)
	}
	for _, r := range token {
		if !isAlphanumeric(r) && r != '-' && r != '_' {
			return fmt.Errorf("contains %q; an ACME token is base64url (RFC 8555 section 8.1)", r)
		}
	}
	return nil
}
