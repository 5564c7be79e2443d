package solver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	dnsutil "github.com/cert-manager/cert-manager/pkg/issuer/acme/dns/util"
	"github.com/go-logr/logr"
	"github.com/miekg/dns"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/runner"
)

// CheckOptions configure Check: which program of which config to try on
// which domain.
type CheckOptions struct {
	// ConfigPath is the solver config file; empty uses the EXEC_* variables.
	ConfigPath string
	// Program names the program; empty means the config's default.
	Program string
	// Domain is the identifier a certificate would be for, e.g. example.org.
	Domain string
	// Nameserver (a host or IP address, with a port if not 53) is asked for
	// the records; empty means the zone's authoritative servers.
	Nameserver string
	// Namespace is the Issuer's namespace the run is for: the program's
	// allowedNamespaces must admit it. Empty means "default".
	Namespace string
	// Mode overrides the program's mode when set.
	Mode Mode
	// ExerciseBreaker runs a failed present again until the program's breaker
	// pauses it, as the webhook would for cert-manager's retries.
	ExerciseBreaker bool
	// Getenv and Environ stand for the checker's own environment: it supplies
	// the values of passEnv and secretEnv.
	Getenv  func(string) string
	Environ func() []string
}

// checker runs one program as the webhook would and reports each step.
type checker struct {
	opts     CheckOptions
	out      io.Writer
	program  *Program
	runsDir  string // each run gets its own private directory in it
	zone     string
	fqdn     string
	failures []string
	hints    []string
}

// Check runs a program's timeout, presents two values at the domain's
// challenge record, waits for both at the nameservers, cleans one up and
// checks that only it is gone, then cleans up the other, writing a report to
// out. It returns an error when any step fails.
func Check(ctx context.Context, opts CheckOptions, out io.Writer) error {
	nameserver, err := nameserverAddress(opts.Nameserver)
	if err != nil {
		return err
	}
	opts.Nameserver = nameserver
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ
	}
	getenv := opts.Getenv
	if opts.ConfigPath != "" {
		getenv = func(k string) string {
			if k == EnvConfig {
				return opts.ConfigPath
			}
			if k == EnvPath || k == EnvPath+"_FILE" {
				return ""
			}
			return opts.Getenv(k)
		}
	}
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	for _, warning := range cfg.Warnings {
		fmt.Fprintf(out, "WARNING: %s\n", warning)
	}
	p, err := programToCheck(cfg, opts.Program)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "policy of program %q: namespaces: %s; domains: %s\n", p.Name, listOrAny(p.AllowedNamespaces, "any"), listOrAny(p.AllowedDomains, "any"))
	fmt.Fprintf(out, "limits of program %q: %s\n", p.Name, p.limits())
	if err := p.authorizeNamespace(opts.Namespace); err != nil {
		return err
	}
	if err := p.authorizeDomain(opts.Domain); err != nil {
		return err
	}
	if opts.Mode != "" {
		copied := *p
		copied.Mode = opts.Mode
		p = &copied
	}
	if err := validateName("domain", rawDomain(opts.Domain)); err != nil {
		return err
	}
	warnUnsetVariables(p, opts, out)
	c := &checker{opts: opts, out: out, program: p, runsDir: os.TempDir(), fqdn: challengeFQDN("", opts.Domain)}
	return c.run(ctx)
}

// warnUnsetVariables warns of each passEnv and secretEnv variable that check's
// environment does not supply (an empty secretEnv value is not passed), and
// says where the webhook would get it. A passEnv variable is supplied by its
// NAME_FILE too, as the runner reads it.
func warnUnsetVariables(p *Program, opts CheckOptions, out io.Writer) {
	environ := opts.Environ()
	set := func(name string) bool {
		return slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
	}
	for _, name := range p.PassEnv {
		if !set(name) && !set(name+"_FILE") {
			fmt.Fprintf(out, "WARNING: passEnv %s is not set in this environment, nor %s_FILE, so the program runs without it; "+
				"the webhook passes it on from the runner container's environment (the chart's extraEnv)\n", name, name)
		}
	}
	for _, name := range p.SecretEnv {
		if opts.Getenv(name) == "" {
			fmt.Fprintf(out, "WARNING: secretEnv %s is not set in this environment, so the program runs without it; "+
				"the webhook takes it from the Issuer's Secret (the Issuer config's env.%s.secretKeyRef)\n", name, name)
		}
	}
}

// programToCheck is the program --program names, else the config's default.
func programToCheck(cfg *Config, name string) (*Program, error) {
	if name == "" {
		name = cfg.DefaultProgram
	}
	if name == "" {
		return nil, fmt.Errorf("the solver config has no defaultProgram: choose a program with --program: %s", strings.Join(cfg.ProgramNames(), ", "))
	}
	p := cfg.Programs[name]
	if p == nil {
		return nil, fmt.Errorf("--program %q is not configured; choose one of: %s", name, strings.Join(cfg.ProgramNames(), ", "))
	}
	return p, nil
}

// hostnameRE is a host name as a nameserver's: letters, digits, '-', '_'
// and dots.
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$`)

// nameserverAddress is --nameserver as host:port: an IP address (IPv6 with
// or without brackets) or host name, with port 53 unless it names one. It
// fails before anything runs rather than at the first query, after present.
func nameserverAddress(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if addr, err := netip.ParseAddr(s); err == nil {
		return net.JoinHostPort(addr.String(), "53"), nil
	}
	bracketed := strings.HasPrefix(s, "[")
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, "53"
		if bracketed && strings.HasSuffix(s, "]") {
			host = s[1 : len(s)-1]
		}
	}
	_, notIP := netip.ParseAddr(host)
	n, portErr := strconv.Atoi(port)
	if notIP != nil && (bracketed || !hostnameRE.MatchString(host)) || portErr != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("--nameserver %q: name a host or IP address, with a port from 1 to 65535 if not 53: "+
			"e.g. 192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:5353 or ns1.example.org", s)
	}
	return net.JoinHostPort(host, port), nil
}

func (c *checker) say(format string, args ...any) { fmt.Fprintf(c.out, format+"\n", args...) }

// failUnqueried records that the nameservers could not be asked about what,
// so nothing is concluded about it: an unanswered query is never "gone".
func (c *checker) failUnqueried(what string, err error) {
	c.fail(fmt.Sprintf("could not query the nameservers, so %s is unknown: %v", what, err),
		"The nameservers could not be queried: check --nameserver or that the zone's authoritative servers answer TXT queries from here.")
}

func (c *checker) fail(step, hint string) {
	c.failures = append(c.failures, step)
	if hint != "" && !slices.Contains(c.hints, hint) {
		c.hints = append(c.hints, hint)
	}
	c.say("  FAIL: %s", step)
}

func (c *checker) run(ctx context.Context) error {
	p := c.program
	c.say("program %q: %s (%s mode, timeout %s)", p.Name, p.Path, p.Mode, p.Timeout)
	c.zone = c.findZone(ctx)
	c.say("record %s in zone %s", c.fqdn, c.zone)

	settings := c.timeoutStep(ctx)
	values := [2]string{randomValue(), randomValue()}
	creds := [2]rawCredentials{}
	if p.Mode == ModeRaw {
		for i := range creds {
			creds[i] = rawTestCredentials()
			values[i] = dns01Value(creds[i].KeyAuth)
		}
	}

	for i := range values {
		if !c.runStep(ctx, ActionPresent, values[i], creds[i]) {
			if c.opts.ExerciseBreaker {
				c.exerciseBreaker(ctx, values[i], creds[i])
			}
			return c.report()
		}
	}
	if got, visible, err := c.waitFor(ctx, settings, "both values visible", func(got []string) bool {
		return slices.Contains(got, values[0]) && slices.Contains(got, values[1])
	}); !visible {
		const twoValues = "(a certificate for a name and its wildcard puts two values there)."
		switch {
		case err != nil:
			c.failUnqueried("whether the presented values appeared", err)
		case slices.Contains(got, values[1]):
			c.fail("only the second presented value appeared", "present replaced the value already at the name: it must add its value beside the others "+twoValues)
		case slices.Contains(got, values[0]):
			c.fail("only the first presented value appeared", "the second present did not add its value beside the first: present must add its value whatever others are at the name "+twoValues)
		default:
			c.fail("neither presented value appeared", fmt.Sprintf("present succeeded but neither value appeared at %s within %s: it must write the record before it exits 0. "+
				"Check the name it writes (the FQDN argument ends with a dot; do not append the zone again) and the server it updates "+
				"(check reads the record from %s); if the record only takes longer to appear, raise %s.",
				c.fqdn, settings.Timeout, strings.Join(c.nameservers(ctx), ", "), timeoutSetting(c.program, settings.TimeoutSource)))
		}
		c.runStep(ctx, ActionCleanUp, values[0], creds[0])
		c.runStep(ctx, ActionCleanUp, values[1], creds[1])
		return c.report()
	}
	if c.runStep(ctx, ActionPresent, values[0], creds[0]) {
		c.say("  present again of the same value: ok (idempotent)")
	} else {
		c.hints = append(c.hints, "present must succeed when the record already exists: cert-manager retries it.")
	}

	c.runStep(ctx, ActionCleanUp, values[1], creds[1])
	// The verdict below reads the record afresh, whatever the wait saw.
	_, _, _ = c.waitFor(ctx, settings, "second value gone, first kept", func(got []string) bool {
		return !slices.Contains(got, values[1]) && slices.Contains(got, values[0])
	})
	got, err := c.lookup(ctx)
	switch {
	case err != nil:
		c.failUnqueried("what cleanup of one value left", err)
	case slices.Contains(got, values[1]):
		c.fail("cleanup left its value in place", "cleanup must delete the record with its own value.")
	case !slices.Contains(got, values[0]):
		c.fail("cleanup of one value also removed the other", "cleanup deletes every TXT record at the name: delete only the record with the given value (a certificate for a name and its wildcard puts two values there).")
	default:
		c.say("  only the cleaned-up value is gone: ok")
	}

	c.runStep(ctx, ActionCleanUp, values[0], creds[0])
	if c.runStep(ctx, ActionCleanUp, values[0], creds[0]) {
		c.say("  cleanup of a value already gone: ok (idempotent)")
	} else {
		c.hints = append(c.hints, "cleanup must succeed when the record is already gone: cert-manager retries it.")
	}
	if _, _, err := c.waitFor(ctx, settings, "record empty", func(got []string) bool {
		return !slices.Contains(got, values[0]) && !slices.Contains(got, values[1])
	}); err != nil {
		c.failUnqueried("whether the record is empty after cleanup", err)
	}
	return c.report()
}

// timeoutStep returns the propagation settings check waits with: those the
// webhook would use, from `program timeout` for a program that waits for
// propagation. Others are not asked, as the webhook does not ask them (see
// newState): a script written for lego may take `timeout` for cleanup.
func (c *checker) timeoutStep(ctx context.Context) propagationSettings {
	settings := configuredPropagation(c.program)
	if c.program.Propagation.Wait {
		c.say("\n$ %s timeout", c.program.Path)
		runCtx, cancel := context.WithTimeout(ctx, timeoutQueryDeadline)
		defer cancel()
		res, err := c.runner().Run(runCtx, c.invocation(ActionTimeout, []string{string(ActionTimeout)}))
		c.printOutput(res)
		if settings, err = timeoutSettings(c.program, res, err); err != nil {
			c.say("  no usable answer (%v); defaults are used where needed", err)
		}
	} else {
		c.say("\n`timeout` not asked: the webhook asks it only of programs with propagation.wait: true (lego never does)")
	}
	c.say("  propagation timeout %s (%s), interval %s (%s)", settings.Timeout, settings.TimeoutSource, settings.Interval, settings.IntervalSource)
	return settings
}

func (c *checker) invocation(action Action, args []string) runner.Invocation {
	return runner.Invocation{
		Program: c.program.Name, Action: action, Args: args, Secrets: c.secretEnv(),
		Context: runner.Context{DNSName: rawDomain(c.opts.Domain), ResolvedFQDN: c.fqdn, ResolvedZone: c.zone, ResourceNamespace: c.opts.Namespace},
	}
}

// runner runs the checked program in this process, as the webhook's runner would.
func (c *checker) runner() *runner.Local {
	return &runner.Local{
		Programs: func(name string) (runner.Program, bool) {
			return c.program.runnerProgram(), name == c.program.Name
		},
		Environ: c.opts.Environ,
		RunsDir: c.runsDir,
		Log:     logr.Discard(),
	}
}

// secretEnv takes the values of the program's secretEnv from the checker's
// own environment, as an Issuer's Secrets would supply them.
func (c *checker) secretEnv() map[string]string {
	values := map[string]string{}
	for _, name := range c.program.SecretEnv {
		if v := c.opts.Getenv(name); v != "" {
			values[name] = v
		}
	}
	return values
}

// runStep runs present or cleanup for value and reports it.
func (c *checker) runStep(ctx context.Context, action Action, value string, creds rawCredentials) bool {
	args := c.args(action, value, creds)
	c.say("\n$ %s %s", c.program.Path, strings.Join(args, " "))
	c.say("  env: %s", strings.Join(c.runner().VariableNames(c.invocation(action, args)), " "))
	res, err := c.runQuietly(ctx, action, value, creds)
	c.printOutput(res)
	if err != nil {
		var runErr *runner.RunError
		hint := ""
		if errors.As(err, &runErr) && runErr.Killed {
			hint = fmt.Sprintf("The program did not finish within its timeout (%s): raise `timeout` or make it faster.", c.program.Timeout)
		}
		c.fail(err.Error(), hint)
		return false
	}
	c.say("  ok in %s", res.Duration.Round(time.Millisecond))
	return true
}

func (c *checker) args(action Action, value string, creds rawCredentials) []string {
	return programArgs(c.program.Mode, action, challengeArgs{
		FQDN: c.fqdn, Value: value, Domain: rawDomain(c.opts.Domain), Token: creds.Token, KeyAuth: creds.KeyAuth,
	})
}

// runQuietly runs action for value within the program's timeout.
func (c *checker) runQuietly(ctx context.Context, action Action, value string, creds rawCredentials) (runner.Result, error) {
	runCtx, cancel := context.WithTimeout(ctx, c.program.Timeout)
	defer cancel()
	return c.runner().Run(runCtx, c.invocation(action, c.args(action, value, creds)))
}

// exerciseBreaker runs a failed present again, as the webhook would run
// cert-manager's retries, until the program's breaker pauses it, and shows
// what a Challenge's status then says.
func (c *checker) exerciseBreaker(ctx context.Context, value string, creds rawCredentials) {
	p := c.program
	if p.Breaker.Failures == 0 {
		c.say("\nbreaker: off (breaker.failures: 0); nothing to exercise")
		return
	}
	c.say("\nbreaker: present again, as the webhook runs cert-manager's retries, until the program is paused for namespace %q", c.opts.Namespace)
	guards := newGuards(logr.Discard(), time.Now)
	for try := 1; try <= p.Breaker.Failures+1; try++ {
		turn, err := guards.admit(ctx, p, c.opts.Namespace)
		if err != nil {
			c.say("  request %d is answered at once, without a run:\n  %s", try, err)
			return
		}
		res, err := c.runQuietly(ctx, ActionPresent, value, creds)
		err = turn.ran(res, err)
		turn.leave()
		if err == nil {
			c.say("  request %d: present succeeded; the breaker stays closed", try)
			return
		}
		c.say("  request %d: %s", try, err)
	}
}

func (c *checker) printOutput(res runner.Result) {
	for _, l := range res.Stdout {
		c.say("  | %s", l)
	}
	for _, l := range res.Stderr {
		c.say("  ! %s", l)
	}
}

// nameservers are the servers asked for the record: the given one, or the
// zone's authoritative servers.
func (c *checker) nameservers(ctx context.Context) []string {
	if c.opts.Nameserver != "" {
		return []string{c.opts.Nameserver}
	}
	msg, err := dnsutil.DNSQuery(ctx, c.zone, dns.TypeNS, dnsutil.RecursiveNameservers, true)
	if err != nil {
		return dnsutil.RecursiveNameservers
	}
	var servers []string
	for _, rr := range msg.Answer {
		if ns, ok := rr.(*dns.NS); ok {
			servers = append(servers, strings.TrimSuffix(ns.Ns, ".")+":53")
		}
	}
	if len(servers) == 0 {
		return dnsutil.RecursiveNameservers
	}
	return servers
}

func (c *checker) findZone(ctx context.Context) string {
	servers := dnsutil.RecursiveNameservers
	if c.opts.Nameserver != "" {
		servers = []string{c.opts.Nameserver}
	}
	zone, err := dnsutil.FindZoneByFqdn(ctx, c.fqdn, servers)
	if err != nil {
		c.say("  could not find the zone of %s (%v); CERT_MANAGER_RESOLVED_ZONE is left empty", c.fqdn, err)
		return ""
	}
	return zone
}

// lookup returns the TXT values every nameserver serves at the record; a
// value counts only when all of them serve it. It fails when a nameserver
// cannot be asked or does not answer (SERVFAIL, REFUSED, ...): that says
// nothing about the record.
func (c *checker) lookup(ctx context.Context) ([]string, error) {
	var common []string
	for i, ns := range c.nameservers(ctx) {
		msg, err := dnsutil.DNSQuery(ctx, c.fqdn, dns.TypeTXT, []string{ns}, false)
		if err != nil {
			return nil, fmt.Errorf("%s TXT at %s: %w", c.fqdn, ns, err)
		}
		if msg.Rcode != dns.RcodeSuccess && msg.Rcode != dns.RcodeNameError {
			return nil, fmt.Errorf("%s TXT at %s: answer %s", c.fqdn, ns, dns.RcodeToString[msg.Rcode])
		}
		var values []string
		for _, rr := range msg.Answer {
			if txt, ok := rr.(*dns.TXT); ok {
				values = append(values, strings.Join(txt.Txt, ""))
			}
		}
		if i == 0 {
			common = values
			continue
		}
		common = slices.DeleteFunc(common, func(v string) bool { return !slices.Contains(values, v) })
	}
	return common, nil
}

// waitFor polls the nameservers until cond holds (true) or the propagation
// timeout passes (false), and returns the values last seen. The error says
// why nothing is known instead: the last query failed, or ctx ended.
func (c *checker) waitFor(ctx context.Context, settings propagationSettings, what string, cond func([]string) bool) ([]string, bool, error) {
	start := time.Now()
	for {
		got, err := c.lookup(ctx)
		if err == nil && cond(got) {
			c.say("  %s after %s", what, time.Since(start).Round(100*time.Millisecond))
			return got, true, nil
		}
		if time.Since(start)+settings.Interval > settings.Timeout {
			if err != nil {
				c.say("  could not tell whether %s after %s: %v", what, settings.Timeout, err)
				return nil, false, err
			}
			c.say("  not %s after %s", what, settings.Timeout)
			return got, false, nil
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(settings.Interval):
		}
	}
}

// timeoutSetting names the setting that sets p's propagation timeout, from
// source, for advice to raise it.
func timeoutSetting(p *Program, source string) string {
	switch {
	case source == "program":
		return "the program's `timeout` answer"
	case source == EnvPropagationTimeout || p.passAllEnv: // EXEC_PATH has no config file
		return EnvPropagationTimeout
	}
	return "propagation.timeout in the solver config"
}

func (c *checker) report() error {
	c.say("")
	if len(c.failures) == 0 {
		c.say("PASS: program %q presents and cleans up %s as cert-manager needs", c.program.Name, c.fqdn)
		return nil
	}
	c.say("FAIL: program %q", c.program.Name)
	for _, h := range c.hints {
		c.say("  hint: %s", h)
	}
	return fmt.Errorf("check failed: %s", strings.Join(c.failures, "; "))
}

// listOrAny lists values for a report, or says what an absent list means.
func listOrAny(values []string, absent string) string {
	if values == nil {
		return absent
	}
	return strings.Join(values, ", ")
}

func randomValue() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// rawTestCredentials makes a token and the key authorization of a throw-away
// account key, as an ACME server and cert-manager would.
func rawTestCredentials() rawCredentials {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(key)
	token := randomValue()
	keyAuth, _ := keyAuthorization(token, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	return rawCredentials{Token: token, KeyAuth: keyAuth}
}
