//go:build image

// Package image tests the container image `make image` builds, as podman runs
// it: `check` with the shipped example program against BIND, the tools and
// user the README promises, and the webhook's start. `make test-image` builds
// the image and passes its docker-archive tarball in IMAGE_ARCHIVE.
package image

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cert-manager-webhook-exec/cert-manager-webhook-exec/internal/testbed"
)

const examplesDir = "/usr/local/share/cert-manager-webhook-exec/examples"

// engine is the podman that runs the image, with its own storage, loaded once
// for all tests.
var engine *podman

// withPackages is the image docs/add-packages/Dockerfile makes of it
// (hack/add-packages.sh, with python3), loaded into engine's storage too.
var withPackages string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	archive := os.Getenv("IMAGE_ARCHIVE")
	if archive == "" {
		fmt.Fprintln(os.Stderr, "IMAGE_ARCHIVE is not set: run `make test-image`, which builds the image and sets it")
		return 1
	}
	dir, err := os.MkdirTemp("", "image-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	engine = &podman{dir: dir}
	code := 1
	if engine.image, err = engine.load(archive); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else if withPackages, err = engine.load(os.Getenv("ADD_PACKAGES_ARCHIVE")); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	if err := engine.remove(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

// TestImageCheckAgainstBIND runs `check` inside the image, as its default
// user, with the example nsupdate.sh the image ships, against BIND on
// loopback: both modes must PASS and leave no record behind, and the TSIG
// secret, given through the environment, must not appear in the report.
func TestImageCheckAgainstBIND(t *testing.T) {
	bind := testbed.StartBIND(t, "example.com.")
	dir := testbed.Render(t, filepath.Join(testbed.RepoRoot(t), "test", "image", "testdata"), map[string]string{
		"BIND_PORT": strconv.Itoa(bind.Port), "TSIG_KEY_NAME": bind.KeyName,
	})
	// The container's user (65532) reads the config through a bind mount.
	for path, mode := range map[string]os.FileMode{dir: 0o755, filepath.Join(dir, "config.yaml"): 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	tests := map[string]struct {
		image, program string
		want           []string
	}{
		"default mode": {program: "nsupdate", want: []string{
			`program "nsupdate": ` + examplesDir + "/nsupdate.sh (default mode, timeout 30s)",
			"$ " + examplesDir + "/nsupdate.sh present _acme-challenge.check.example.com. ",
			"only the cleaned-up value is gone: ok",
			"cleanup of a value already gone: ok (idempotent)",
			`PASS: program "nsupdate" presents and cleans up _acme-challenge.check.example.com. as cert-manager needs`,
		}},
		"RAW mode": {program: "nsupdate-raw", want: []string{
			"$ " + examplesDir + "/nsupdate.sh present -- check.example.com ",
			`PASS: program "nsupdate-raw"`,
		}},
		// Packages added on top leave the webhook and its tools working.
		"default mode, with packages added": {image: withPackages, program: "nsupdate", want: []string{
			`PASS: program "nsupdate" presents and cleans up _acme-challenge.check.example.com. as cert-manager needs`,
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// --env NAME without a value passes podman's own value, so the
			// secret is in no command line.
			out, exit := engine.runImage(t, cmp.Or(tc.image, engine.image), []string{"--env", "TSIG_SECRET", "--volume", dir + ":/config:ro"},
				[]string{"TSIG_SECRET=" + bind.KeySecret},
				"check", "--config", "/config/config.yaml", "--program", tc.program,
				"--domain", "check.example.com", "--nameserver", bind.Addr)
			if exit != 0 {
				t.Errorf("exit status %d, want 0", exit)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if strings.Contains(out, bind.KeySecret) {
				t.Error("the TSIG secret appears in the report")
			}
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
	if left := bind.TXT(t, "_acme-challenge.check.example.com."); len(left) != 0 {
		t.Errorf("records left behind: %q", left)
	}
}

// TestImageContents runs probes in one container of the image, through its
// /bin/sh: the user, the static binary, the tools the examples call (each
// must run, so its libraries are there), the CA bundle and the examples.
func TestImageContents(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(testbed.RepoRoot(t), "examples"))
	if err != nil {
		t.Fatal(err)
	}
	var examples strings.Builder
	for _, e := range entries {
		examples.WriteString(e.Name() + "\n")
	}
	// want is the beginning of the probe's output: versions of Debian
	// bookworm's packages, whose point releases change the rest.
	probes := map[string]struct{ command, want string }{
		"user":            {command: "id -u; id -g", want: "65532\n65532\n"},
		"shell":           {command: "readlink -f /bin/sh", want: "/usr/bin/dash\n"},
		"static binary":   {command: "ldd /usr/local/bin/cert-manager-webhook-exec || true", want: "\tnot a dynamic executable\n"},
		"nsupdate":        {command: "nsupdate -V", want: "nsupdate 9.18."},
		"curl":            {command: "curl --version", want: "curl 7.88.1 "},
		"jq":              {command: "jq --version", want: "jq-1.6\n"},
		"openssl":         {command: "openssl version", want: "OpenSSL 3.0."},
		"CA certificates": {command: "[ $(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt) -gt 100 ] && echo bundle", want: "bundle\n"},
		"examples":        {command: "ls " + examplesDir, want: examples.String()},
		"trimmed":         {command: "find /usr/share/man /usr/share/doc /usr/share/locale -type f ! -name copyright | head -n3; echo end", want: "end\n"},
	}
	names := make([]string, 0, len(probes))
	for name := range probes {
		names = append(names, name)
	}
	sort.Strings(names)
	var script strings.Builder
	for _, name := range names {
		fmt.Fprintf(&script, "echo '### %s'; (%s) 2>&1\n", name, probes[name].command)
	}
	out, exit := engine.run(t, []string{"--entrypoint", "/bin/sh"}, nil, "-c", script.String())
	if exit != 0 {
		t.Fatalf("exit status %d:\n%s", exit, out)
	}
	outputs := map[string]string{}
	for _, section := range strings.Split(out, "### ")[1:] {
		name, output, _ := strings.Cut(section, "\n")
		outputs[name] = output
	}
	for name, probe := range probes {
		t.Run(name, func(t *testing.T) {
			if got := outputs[name]; !strings.HasPrefix(got, probe.want) {
				t.Errorf("%s: output %q, want it to begin with %q", probe.command, got, probe.want)
			}
		})
	}
}

// TestAddPackagesImage: the image docs/add-packages/Dockerfile builds, with
// python3 added, as hack/add-packages.sh builds it without network: a
// program in Python runs there as the webhook's user, and the image is still
// the webhook's (its user, entrypoint and tools).
func TestAddPackagesImage(t *testing.T) {
	program := "import json, os, ssl, urllib.request; print(json.dumps({'uid': os.getuid(), 'tls': ssl.OPENSSL_VERSION.split()[0]}))"
	out, exit := engine.runImage(t, withPackages, []string{"--entrypoint", "python3"}, nil, "-c", program)
	if want := `{"uid": 65532, "tls": "OpenSSL"}` + "\n"; exit != 0 || out != want {
		t.Errorf("python3 in the image: exit status %d, output %q, want %q", exit, out, want)
	}
	inspect, err := engine.command(context.Background(), "image", "inspect",
		"--format", "{{.Config.User}} {{json .Config.Entrypoint}}", withPackages).CombinedOutput()
	if err != nil {
		t.Fatalf("podman image inspect: %v\n%s", err, inspect)
	}
	if want := `65532:65532 ["/usr/local/bin/cert-manager-webhook-exec"]` + "\n"; string(inspect) != want {
		t.Errorf("image config %q, want %q", inspect, want)
	}
	out, _ = engine.runImage(t, withPackages, []string{"--entrypoint", "/bin/sh"}, nil, "-c", "ls /var/cache/apt /var/lib/apt/lists 2>&1; find / -xdev -name '*.deb' | head -n3")
	if strings.Contains(out, ".deb") || strings.Contains(out, ".bin") {
		t.Errorf("the image keeps apt's caches or packages:\n%s", out)
	}
}

// TestImageConfig: the image runs the webhook as UID 65532, not root, unless
// the Pod says otherwise.
func TestImageConfig(t *testing.T) {
	out, err := engine.command(context.Background(), "image", "inspect",
		"--format", "{{.Config.User}} {{json .Config.Entrypoint}}", engine.image).CombinedOutput()
	if err != nil {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	if want := `65532:65532 ["/usr/local/bin/cert-manager-webhook-exec"]` + "\n"; string(out) != want {
		t.Errorf("image config %q, want %q", out, want)
	}
}

// TestImageVersion: the image's binary carries the commit it was built from
// and that commit's date, though it is built without VCS information.
func TestImageVersion(t *testing.T) {
	git := func(args ...string) string {
		out, err := exec.Command("git", append([]string{"-C", testbed.RepoRoot(t)}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	commit := git("rev-parse", "HEAD")
	if git("status", "--porcelain", "--untracked-files=no") != "" {
		commit += "-dirty"
	}
	out, exit := engine.run(t, nil, nil, "version")
	if exit != 0 {
		t.Fatalf("version: exit status %d:\n%s", exit, out)
	}
	want := "version: dev\ncommit:  " + commit + "\ndate:    " + git("log", "-1", "--format=%cI") + "\ngo:      go1."
	if !strings.HasPrefix(out, want) {
		t.Errorf("version printed\n%s\nwant it to begin with\n%s", out, want)
	}
}

// TestImageWebhookNeedsGroupName: the image's entrypoint is the webhook, which
// starts and refuses to serve without GROUP_NAME.
func TestImageWebhookNeedsGroupName(t *testing.T) {
	out, exit := engine.run(t, nil, nil)
	if exit != 1 {
		t.Errorf("exit status %d, want 1", exit)
	}
	want := "GROUP_NAME must be set to the API group the webhook serves (the Issuer's webhook.groupName), e.g. acme.example.com\n"
	if out != want {
		t.Errorf("output = %q, want %q", out, want)
	}
}

// podman runs the image with a storage of its own under dir, so the test
// neither sees nor touches any other image or container on the machine.
type podman struct {
	dir   string
	image string
}

func (p *podman) command(ctx context.Context, args ...string) *exec.Cmd {
	global := []string{
		"--root", filepath.Join(p.dir, "root"), "--runroot", filepath.Join(p.dir, "run"),
		"--tmpdir", filepath.Join(p.dir, "tmp"), "--storage-driver", "vfs", "--events-backend", "file",
		// crun refuses cgroup v1 hybrid mode ("cgroups in hybrid mode not
		// supported"); runc with cgroupfs runs there and on cgroup v2.
		"--runtime", "runc", "--cgroup-manager", "cgroupfs",
	}
	return exec.CommandContext(ctx, "podman", append(global, args...)...)
}

// load imports the docker-archive tarball and returns the image it holds.
func (p *podman) load(archive string) (string, error) {
	if archive == "" {
		return "", errors.New("IMAGE_ARCHIVE or ADD_PACKAGES_ARCHIVE is not set: run `make test-image`, which builds the images and sets them")
	}
	out, err := p.command(context.Background(), "load", "--quiet", "--input", archive).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("podman load %s: %w\n%s", archive, err, out)
	}
	ref, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "Loaded image: ")
	if !ok || strings.Contains(ref, "\n") {
		return "", fmt.Errorf("podman load %s: want one image, got:\n%s", archive, out)
	}
	return ref, nil
}

// run runs a container of the image with podman's extra options, environment
// and the image's arguments; it returns the combined output and the exit
// status. The container is removed when it exits. It shares the host's
// network: every server of the test bed listens on loopback.
func (p *podman) run(t *testing.T, options, env []string, args ...string) (string, int) {
	t.Helper()
	return p.runImage(t, p.image, options, env, args...)
}

// runImage is run with another image of the storage.
func (p *podman) runImage(t *testing.T, image string, options, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Podman run as root asks for open-file and process limits above the
	// hard limits of a machine whose own container forbids raising them
	// (nofile 20000 here), and then fails; these fit under them.
	runArgs := []string{"run", "--rm", "--network", "host",
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000"}
	runArgs = append(append(append(runArgs, options...), image), args...)
	cmd := p.command(ctx, runArgs...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		return out.String(), exitErr.ExitCode()
	case err != nil:
		t.Fatalf("podman run: %v\n%s", err, out.String())
	}
	return out.String(), 0
}

// remove deletes what the test left in podman's storage, then the storage,
// unless a container, mount or process of it survived: that is an error.
func (p *podman) remove() error {
	var problems []string
	out, err := p.command(context.Background(), "rm", "--all", "--force").CombinedOutput()
	if err != nil {
		problems = append(problems, fmt.Sprintf("podman rm --all: %v\n%s", err, out))
	} else if left := strings.TrimSpace(string(out)); left != "" {
		problems = append(problems, "containers left behind: "+left)
	}
	if out, err := p.command(context.Background(), "rmi", "--all", "--force").CombinedOutput(); err != nil {
		problems = append(problems, fmt.Sprintf("podman rmi --all: %v\n%s", err, out))
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		if strings.Contains(line, " "+p.dir+"/") {
			problems = append(problems, "mount left behind: "+line)
		}
	}
	problems = append(problems, p.processesLeft()...)
	if len(problems) > 0 {
		return fmt.Errorf("podman storage %s kept: %s", p.dir, strings.Join(problems, "\n"))
	}
	return os.RemoveAll(p.dir)
}

// processesLeft names the processes whose command line mentions the storage
// (podman's conmon does), which must all have exited.
func (p *podman) processesLeft() []string {
	var left []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range cmdlines {
		cmdline, err := os.ReadFile(path)
		if err == nil && bytes.Contains(cmdline, []byte(p.dir)) {
			left = append(left, fmt.Sprintf("process left behind: %s: %s", filepath.Base(filepath.Dir(path)),
				bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
		}
	}
	return left
}
