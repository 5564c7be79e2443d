package testbed

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Node is a single-node Kubernetes cluster: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd (Debian's, with runc
// and the CNI plugins), kubelet and kube-proxy, all in the network namespace
// of the test process (see NodeOptions), so that no packet and no iptables
// rule reaches the machine's own network.
type Node struct {
	// IP is the node's address; pods reach host processes of the test on it.
	IP string
	// Dir holds every file of the node; it is removed at the end.
	Dir string
	// Kubeconfig is an admin kubeconfig (system:masters).
	Kubeconfig string
	Config     *rest.Config
	Kube       kubernetes.Interface
	CM         cmclient.Interface
	Dynamic    dynamic.Interface

	auditLog  string
	bin       string
	kubectl   string
	sock      string
	cgroup    string
	logDir    string
	hostPaths []string
}

// NodeOptions configure StartNode.
type NodeOptions struct {
	// RepoRoot locates hack/test-assets.sh.
	RepoRoot string
	// LogDir receives every component's log.
	LogDir string
	// Images are docker-archive tarballs imported into containerd; pods use
	// them with imagePullPolicy Never (nothing can be pulled here).
	Images []string
	// PauseImage is the sandbox image, one of Images.
	PauseImage string
	// Step reports progress.
	Step func(format string, args ...any)
}

const (
	nodeName     = "exec-node"
	nodeIP       = "10.88.0.10"
	nodeGateway  = "10.88.0.1"
	podSubnet    = "10.244.0.0/24"
	serviceRange = "10.96.0.0/16"
	kubeService  = "10.96.0.1"
)

// hostPathsOutsideDir are hard-coded by kubelet and containerd 1.6; they are
// removed at the end when the node created them.
var hostPathsOutsideDir = []string{"/var/log/containers", "/var/lib/kubelet", "/var/lib/cni", "/run/containerd"}

// inFreshNetwork reports whether this process runs in a network namespace
// of its own that has nothing but a loopback device, as `make e2e-node`
// starts it (unshare --net).
func inFreshNetwork() (bool, error) {
	interfaces, err := net.Interfaces()
	if err != nil {
		return false, err
	}
	return len(interfaces) == 1 && interfaces[0].Flags&net.FlagLoopback != 0, nil
}

// StartNode brings a node to Ready and tears it down when t ends: every
// process it started is stopped by PID, every container killed, every mount
// under its directory unmounted and its cgroups removed.
func StartNode(t TB, opts NodeOptions) *Node {
	t.Helper()
	fresh, err := inFreshNetwork()
	if err != nil {
		t.Fatalf("listing network interfaces: %v", err)
	}
	if !fresh {
		t.Fatalf("the node runs in a new network namespace with only a loopback device, so that nothing reaches this machine's network: run it with `make e2e-node` (unshare --net)")
	}
	step := opts.Step
	if step == nil {
		step = t.Logf
	}
	n := &Node{
		IP:     nodeIP,
		Dir:    filepath.Join(os.TempDir(), "cert-manager-webhook-exec-node"),
		bin:    Asset(t, opts.RepoRoot, "node"),
		cgroup: nodeName,
		logDir: opts.LogDir,
	}
	n.lockMachine(t, step)
	n.auditLog = filepath.Join(opts.LogDir, "kube-apiserver-audit.log")
	n.kubectl = filepath.Join(n.bin, "kubectl")
	n.sock = filepath.Join(n.Dir, "containerd", "containerd.sock")
	// A run killed by its timeout leaves containers and mounts behind; the
	// next run removes them before it starts.
	n.teardown(t)
	for _, p := range hostPathsOutsideDir {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			n.hostPaths = append(n.hostPaths, p)
		}
	}
	// Beside Dir, not in it, so that a killed run's successor knows them.
	if err := os.WriteFile(n.hostPathsFile(), []byte(strings.Join(n.hostPaths, "\n")), 0o600); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { n.teardown(t) })
	for _, d := range []string{"etc", "pki", "cni/net.d", "cni/ipam", "containerd", "kubelet", "pod-logs", "etcd"} {
		if err := os.MkdirAll(filepath.Join(n.Dir, d), 0o700); err != nil {
			t.Fatalf("%v", err)
		}
	}
	start := time.Now()
	timed := func(what string, fn func()) {
		fn()
		step("node: %s (%s)", what, time.Since(start).Round(100*time.Millisecond))
	}
	timed("network and cgroups", func() { n.setUpNetwork(t); n.makeCgroups(t) })
	n.writePKI(t)
	n.writeConfigs(t, opts.PauseImage)
	timed("etcd", func() { n.startEtcd(t) })
	timed("containerd with "+strconv.Itoa(len(opts.Images))+" images", func() { n.startContainerd(t, opts.Images) })
	timed("kube-apiserver", func() { n.startAPIServer(t) })
	timed("node Ready", func() { n.startAgents(t) })
	return n
}

// lockMachine holds a lock beside the node's directory until t ends, after
// its teardown: the directory, the cgroups and the shims' sockets are the
// machine's, and a second run's teardown of them would kill a live node.
// A second run waits.
func (n *Node) lockMachine(t TB, step func(string, ...any)) {
	t.Helper()
	lock, err := os.OpenFile(n.Dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = lock.Close() })
	if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		return
	}
	step("node: another node test on this machine holds %s; waiting for it to end", lock.Name())
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("locking %s: %v", lock.Name(), err)
	}
}

func (n *Node) path(parts ...string) string {
	return filepath.Join(append([]string{n.Dir}, parts...)...)
}

func (n *Node) run(t TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// setUpNetwork gives the namespace a node address on a veth pair whose two
// ends stay inside it (this kernel has no dummy device) and a default route
// to a gateway that does not exist, so kubelet and kube-proxy find a primary
// interface and every other destination is unreachable.
func (n *Node) setUpNetwork(t TB) {
	t.Helper()
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "node0", "type", "veth", "peer", "name", "node0-peer"},
		{"addr", "add", nodeIP + "/24", "dev", "node0"},
		{"link", "set", "node0", "up"},
		{"link", "set", "node0-peer", "up"},
		{"route", "add", "default", "via", nodeGateway, "dev", "node0"},
	} {
		n.run(t, "ip", args...)
	}
	n.run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1")
}

// makeCgroups creates kubelet's cgroupRoot in every cgroup v1 hierarchy, as
// kubelet requires it to exist.
func (n *Node) makeCgroups(t TB) {
	t.Helper()
	for _, dir := range n.cgroupDirs() {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("%v", err)
		}
	}
	for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
		data := readFile(t, filepath.Join("/sys/fs/cgroup/cpuset", file))
		if err := os.WriteFile(filepath.Join("/sys/fs/cgroup/cpuset", n.cgroup, file), data, 0o644); err != nil {
			t.Fatalf("%v", err)
		}
	}
}

func (n *Node) cgroupDirs() []string {
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	var dirs []string
	for _, h := range hierarchies {
		if info, err := os.Lstat(h); err == nil && info.IsDir() {
			dirs = append(dirs, filepath.Join(h, n.cgroup))
		}
	}
	return dirs
}

// writePKI writes the cluster's CAs, serving and client certificates, the
// service account key and a kubeconfig per client.
func (n *Node) writePKI(t TB) {
	t.Helper()
	ca := NewCA(t, "exec-node-ca")
	frontProxy := NewCA(t, "exec-node-front-proxy-ca")
	dir := n.path("pki")
	WriteFile(t, dir, "ca.crt", ca.CertPEM)
	WriteFile(t, dir, "ca.key", pemKey(t, ca.key))
	WriteFile(t, dir, "front-proxy-ca.crt", frontProxy.CertPEM)
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("%v", err)
	}
	WriteFile(t, dir, "sa.key", pemKey(t, saKey))
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		t.Fatalf("%v", err)
	}
	WriteFile(t, dir, "sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	issue := func(ca *CA, name, cn string, orgs []string, dnsNames []string, ips []net.IP, usage ...x509.ExtKeyUsage) {
		cert, key := ca.IssueTemplate(t, &x509.Certificate{
			Subject: pkix.Name{CommonName: cn, Organization: orgs}, DNSNames: dnsNames, IPAddresses: ips, ExtKeyUsage: usage,
		})
		WriteFile(t, dir, name+".crt", cert)
		WriteFile(t, dir, name+".key", key)
	}
	client, server := x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth
	issue(ca, "apiserver", "kube-apiserver", nil,
		[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(nodeIP), net.ParseIP(kubeService)}, server)
	issue(ca, "kubelet-serving", "system:node:"+nodeName, []string{"system:nodes"}, []string{nodeName}, []net.IP{net.ParseIP(nodeIP)}, server)
	issue(ca, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil, client)
	issue(frontProxy, "front-proxy-client", "front-proxy-client", nil, nil, nil, client)
	for name, user := range map[string][2]string{
		"admin":                   {"exec-node-admin", "system:masters"},
		"kube-controller-manager": {"system:kube-controller-manager", ""},
		"kube-scheduler":          {"system:kube-scheduler", ""},
		"kube-proxy":              {"system:kube-proxy", ""},
		"kubelet":                 {"system:node:" + nodeName, "system:nodes"},
	} {
		var orgs []string
		if user[1] != "" {
			orgs = []string{user[1]}
		}
		issue(ca, name, user[0], orgs, nil, nil, client)
		n.writeKubeconfig(t, name, ca)
	}
	n.Kubeconfig = n.path("kubeconfig", "admin.conf")
}

func pemKey(t TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func (n *Node) writeKubeconfig(t TB, name string, ca *CA) {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["node"] = &clientcmdapi.Cluster{Server: "https://" + nodeIP + ":6443", CertificateAuthorityData: ca.CertPEM}
	kc.AuthInfos["node"] = &clientcmdapi.AuthInfo{ClientCertificate: n.path("pki", name+".crt"), ClientKey: n.path("pki", name+".key")}
	kc.Contexts["node"] = &clientcmdapi.Context{Cluster: "node", AuthInfo: "node"}
	kc.CurrentContext = "node"
	if err := os.MkdirAll(n.path("kubeconfig"), 0o700); err != nil {
		t.Fatalf("%v", err)
	}
	if err := clientcmd.WriteToFile(*kc, n.path("kubeconfig", name+".conf")); err != nil {
		t.Fatalf("%v", err)
	}
}

// writeConfigs writes containerd's, the CNI's, kubelet's and kube-proxy's
// configuration. Each setting that departs from upstream's default answers a
// limit of this machine kind, named in a comment beside it.
func (n *Node) writeConfigs(t TB, pauseImage string) {
	t.Helper()
	vars := map[string]string{"DIR": n.Dir, "NODE_IP": nodeIP, "NODE_NAME": nodeName, "POD_SUBNET": podSubnet, "PAUSE": pauseImage, "CGROUP": n.cgroup}
	for name, text := range map[string]string{
		"etc/containerd.toml":             containerdConfig,
		"cni/net.d/10-exec-node.conflist": cniConfig,
		"etc/kubelet.yaml":                kubeletConfig,
		"etc/kube-proxy.yaml":             kubeProxyConfig,
		"etc/audit-policy.yaml":           nodeAuditPolicy,
		"etc/resolv.conf":                 "nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
	} {
		WriteFile(t, n.Dir, name, []byte(Expand(t, text, vars)))
	}
}

const containerdConfig = `version = 2
root = "${DIR}/containerd/root"
state = "${DIR}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "${DIR}/containerd/containerd.sock"
[ttrpc]
  address = "${DIR}/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "${DIR}/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE}"
  disable_apparmor = true
  # This machine refuses negative oom_score_adj; the pause container asks for -998.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  # containerd 2.x defaults: runc 1.1 gives a non-root container no added capability.
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "${DIR}/containerd/runc"
  # Per registry: hosts.toml with its CA (TrustRegistry), read at each pull.
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "${DIR}/containerd/certs.d"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${DIR}/cni/net.d"
    max_conf_num = 1
`

const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "exec-node",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {"type": "host-local", "dataDir": "${DIR}/cni/ipam", "ranges": [[{"subnet": "${POD_SUBNET}"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /${CGROUP}
failSwapOn: false
containerRuntimeEndpoint: unix://${DIR}/containerd/containerd.sock
imageServiceEndpoint: unix://${DIR}/containerd/containerd.sock
address: ${NODE_IP}
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: ${DIR}/pki/kubelet-serving.crt
tlsPrivateKeyFile: ${DIR}/pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${DIR}/pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [10.96.0.10]
resolvConf: ${DIR}/etc/resolv.conf
podLogsDir: ${DIR}/pod-logs
# Imported images cannot be pulled again: never collect them, never evict.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
# How soon a ConfigMap update reaches a volume.
syncFrequency: 10s
fileCheckFrequency: 10s
maxPods: 50
serializeImagePulls: false
`

// nodeAuditPolicy records every request of the service accounts in
// cert-manager's namespace, where the webhook and cert-manager run.
const nodeAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts:cert-manager"]
- level: None
`

const kubeProxyConfig = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: ${DIR}/kubeconfig/kube-proxy.conf}
mode: iptables
hostnameOverride: ${NODE_NAME}
clusterCIDR: 10.244.0.0/16
bindAddress: 0.0.0.0
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [primary]
# The global conntrack sysctls are read-only outside the initial namespace.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`

// start runs a component. StartProcess stops it when the test ends, after
// the components started later (the node agents first), and its
// parent-death signal ends it with a killed test.
func (n *Node) start(t TB, name, bin string, args ...string) *Process {
	t.Helper()
	return StartProcess(t, n.logDir, name, nil, bin, args...)
}

func (n *Node) startEtcd(t TB) {
	t.Helper()
	p := n.start(t, "etcd", os.Getenv("TEST_ASSET_ETCD"),
		"--name=exec-node", "--data-dir="+n.path("etcd"), "--unsafe-no-fsync",
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=exec-node=http://127.0.0.1:2380", "--log-level=warn")
	waitListening(t, p, "127.0.0.1:2379")
}

func (n *Node) startContainerd(t TB, images []string) {
	t.Helper()
	p := n.start(t, "containerd", "/usr/bin/containerd", "--config", n.path("etc", "containerd.toml"))
	n.waitFor(t, "containerd", 60*time.Second, p, func() error {
		return exec.Command("ctr", "-a", n.sock, "version").Run()
	})
	for _, image := range images {
		n.ctr(t, "images", "import", "--all-platforms", image)
	}
}

// TrustRegistry lets containerd pull from the registry at hostPort over
// HTTPS with a certificate from caPEM, as an admin configures a node for a
// private registry (containerd's hosts.toml).
func (n *Node) TrustRegistry(t TB, hostPort string, caPEM []byte) {
	t.Helper()
	dir := n.path("containerd", "certs.d", hostPort)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	ca := WriteFile(t, dir, "ca.crt", caPEM)
	WriteFile(t, dir, "hosts.toml", []byte(fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = %q\n",
		"https://"+hostPort, "https://"+hostPort, ca)))
}

// ImageRefs lists the references containerd's CRI namespace holds.
func (n *Node) ImageRefs(t TB) []string {
	t.Helper()
	return strings.Fields(n.ctr(t, "images", "list", "--quiet"))
}

// ctr runs containerd's client against the node's containerd, in the
// namespace the CRI uses.
func (n *Node) ctr(t TB, args ...string) string {
	t.Helper()
	return n.run(t, "ctr", append([]string{"-a", n.sock, "-n", "k8s.io"}, args...)...)
}

func (n *Node) startAPIServer(t TB) {
	t.Helper()
	pkiPath := func(name string) string { return n.path("pki", name) }
	p := n.start(t, "kube-apiserver", os.Getenv("TEST_ASSET_KUBE_APISERVER"),
		"--advertise-address="+nodeIP, "--bind-address=0.0.0.0", "--secure-port=6443",
		"--etcd-servers=http://127.0.0.1:2379",
		"--service-cluster-ip-range="+serviceRange,
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--client-ca-file="+pkiPath("ca.crt"), "--tls-cert-file="+pkiPath("apiserver.crt"), "--tls-private-key-file="+pkiPath("apiserver.key"),
		"--kubelet-client-certificate="+pkiPath("apiserver-kubelet-client.crt"), "--kubelet-client-key="+pkiPath("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority="+pkiPath("ca.crt"), "--kubelet-preferred-address-types=InternalIP",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pkiPath("sa.pub"), "--service-account-signing-key-file="+pkiPath("sa.key"),
		"--requestheader-client-ca-file="+pkiPath("front-proxy-ca.crt"), "--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+pkiPath("front-proxy-client.crt"), "--proxy-client-key-file="+pkiPath("front-proxy-client.key"),
		"--audit-policy-file="+n.path("etc", "audit-policy.yaml"), "--audit-log-path="+n.auditLog,
	)
	cfg, err := clientcmd.BuildConfigFromFlags("", n.Kubeconfig)
	if err != nil {
		t.Fatalf("%v", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	n.Config = cfg
	n.Kube = kubernetes.NewForConfigOrDie(cfg)
	n.CM = cmclient.NewForConfigOrDie(cfg)
	n.Dynamic = dynamic.NewForConfigOrDie(cfg)
	n.waitFor(t, "kube-apiserver /readyz", 120*time.Second, p, func() error {
		_, err := n.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
		return err
	})
}

func (n *Node) startAgents(t TB) {
	t.Helper()
	kubeconfig := func(name string) string { return n.path("kubeconfig", name+".conf") }
	pkiPath := func(name string) string { return n.path("pki", name) }
	n.start(t, "kube-controller-manager", filepath.Join(n.bin, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig("kube-controller-manager"),
		"--authentication-kubeconfig="+kubeconfig("kube-controller-manager"),
		"--authorization-kubeconfig="+kubeconfig("kube-controller-manager"),
		"--bind-address=127.0.0.1", "--leader-elect=false",
		"--cluster-signing-cert-file="+pkiPath("ca.crt"), "--cluster-signing-key-file="+pkiPath("ca.key"),
		"--root-ca-file="+pkiPath("ca.crt"), "--service-account-private-key-file="+pkiPath("sa.key"),
		"--use-service-account-credentials=true", "--service-cluster-ip-range="+serviceRange)
	n.start(t, "kube-scheduler", filepath.Join(n.bin, "kube-scheduler"),
		"--kubeconfig="+kubeconfig("kube-scheduler"),
		"--authentication-kubeconfig="+kubeconfig("kube-scheduler"),
		"--authorization-kubeconfig="+kubeconfig("kube-scheduler"),
		"--bind-address=127.0.0.1", "--leader-elect=false")
	kubelet := n.start(t, "kubelet", filepath.Join(n.bin, "kubelet"),
		"--config="+n.path("etc", "kubelet.yaml"), "--kubeconfig="+kubeconfig("kubelet"),
		"--root-dir="+n.path("kubelet"), "--hostname-override="+nodeName, "--node-ip="+nodeIP, "--v=1")
	n.start(t, "kube-proxy", filepath.Join(n.bin, "kube-proxy"), "--config="+n.path("etc", "kube-proxy.yaml"))
	n.waitFor(t, "node Ready", 180*time.Second, kubelet, func() error {
		node, err := n.Kube.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue && len(node.Spec.Taints) == 0 {
				return nil
			}
		}
		return fmt.Errorf("node %s is not Ready or still tainted", nodeName)
	})
	n.waitFor(t, "the default ServiceAccount", 60*time.Second, kubelet, func() error {
		_, err := n.Kube.CoreV1().ServiceAccounts("default").Get(context.Background(), "default", metav1.GetOptions{})
		return err
	})
}

// waitFor polls ready until it returns nil, failing when timeout passes or
// the process p ends first.
func (n *Node) waitFor(t TB, what string, timeout time.Duration, p *Process, ready func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if p.Exited() {
			t.Fatalf("%s exited while waiting for %s:\n%s", p.Name, what, Tail(p.Log(), 40))
		}
		if err = ready(); err == nil {
			return
		}
	}
	t.Fatalf("waiting for %s: %v after %s; %s log:\n%s", what, err, timeout, p.Name, Tail(p.Log(), 40))
}

// Kubectl runs kubectl as the cluster admin and returns its output.
func (n *Node) Kubectl(t TB, args ...string) string {
	t.Helper()
	out, err := n.TryKubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// TryKubectl is Kubectl returning its failure, with what kubectl wrote.
// The output is stdout only: warnings on stderr are no part of it.
func (n *Node) TryKubectl(args ...string) (string, error) {
	cmd := exec.Command(n.kubectl, append([]string{"--kubeconfig", n.Kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w\n%s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// AuditedRequests returns the requests of user recorded so far (the audit
// policy records the service accounts in cert-manager's namespace).
func (n *Node) AuditedRequests(t TB, user string) []AuditEvent {
	t.Helper()
	return readAuditLog(t, n.auditLog, func(e AuditEvent) bool { return e.User.Username == user })
}

// teardown removes what the node's components leave when they have stopped
// (their own cleanups run first, the node agents before containerd and the
// control plane, so nothing restarts a container): every container and its
// shim, then the mounts under Dir, the cgroups, the host paths the node
// created, and Dir itself. It also cleans up after a run that was killed
// before its own teardown.
func (n *Node) teardown(t TB) {
	t.Helper()
	if _, err := os.Stat(n.Dir); os.IsNotExist(err) {
		return
	}
	n.killContainers()
	n.removeShimSockets()
	if err := unmountUnder(n.Dir); err != nil {
		t.Errorf("unmounting the node's directories: %v", err)
		return
	}
	// containerd 1.6 keeps its CNI results in a fixed directory; pods killed
	// without CNI DEL leave theirs.
	results, _ := filepath.Glob("/var/lib/cni/results/exec-node-*")
	for _, r := range results {
		_ = os.Remove(r)
	}
	sandboxes, _ := os.ReadDir(n.path("containerd", "root", "io.containerd.grpc.v1.cri", "sandboxes"))
	for _, s := range sandboxes {
		_ = os.Remove("/var/lib/cni/results/cni-loopback-" + s.Name() + "-lo")
	}
	for _, dir := range n.cgroupDirs() {
		removeCgroupTree(t, dir)
	}
	if data, err := os.ReadFile(n.hostPathsFile()); err == nil {
		n.hostPaths = strings.Fields(string(data))
	}
	for _, p := range n.hostPaths {
		if p == "/var/lib/cni" || p == "/run/containerd" {
			// Shared with other container engines: only what is empty.
			_ = removeDirsDeepestFirst(p)
			continue
		}
		_ = os.RemoveAll(p)
	}
	if err := os.RemoveAll(n.Dir); err != nil {
		t.Errorf("removing %s: %v", n.Dir, err)
	}
	_ = os.Remove(n.hostPathsFile())
}

// hostPathsFile lists the paths outside Dir that this node created.
func (n *Node) hostPathsFile() string { return n.Dir + ".host-paths" }

// killContainers kills every container process, found in the cgroups
// below kubelet's cgroupRoot, and every shim, found working in its bundle
// under the node's directory: shims outlive containerd and keep a pod's
// namespaces alive.
func (n *Node) killContainers() {
	for range 50 {
		found := 0
		for _, pid := range append(n.cgroupMembers(), n.shims()...) {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				found++
			}
		}
		if found == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeShimSockets removes the sockets of the killed shims: containerd 1.6
// puts them in /run/containerd/s whatever its state directory, and a killed
// shim leaves its socket. Each bundle names its shim's in a file "address".
func (n *Node) removeShimSockets() {
	files, _ := filepath.Glob(n.path("containerd", "state", "io.containerd.runtime.v2.task", "*", "*", "address"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if socket := strings.TrimPrefix(strings.TrimSpace(string(data)), "unix://"); strings.HasPrefix(socket, "/run/containerd/s/") {
			_ = os.Remove(socket)
		}
	}
}

// cgroupMembers returns the processes in the node's cgroups.
func (n *Node) cgroupMembers() []int {
	var pids []int
	for _, dir := range n.cgroupDirs() {
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(path)
			for _, field := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(field); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// shims returns the processes working inside the node's directory.
func (n *Node) shims() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd")
		if err == nil && strings.HasPrefix(strings.TrimSuffix(cwd, " (deleted)"), n.Dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// unmountUnder unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) error {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	slices.Sort(points)
	slices.Reverse(points)
	for _, p := range points {
		if err := syscall.Unmount(p, 0); err != nil {
			if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s: %w", p, err)
			}
		}
	}
	return nil
}

// removeCgroupTree removes a cgroup and the ones below it, deepest first,
// retrying for a few seconds: a killed process leaves its cgroup a moment
// after the kill.
func removeCgroupTree(t TB, root string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err = removeDirsDeepestFirst(root); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Errorf("removing cgroup %s: %v", root, err)
	}
}

// removeDirsDeepestFirst removes root and the directories below it, and
// returns the first failure other than a directory already gone.
func removeDirsDeepestFirst(root string) error {
	var dirs []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	slices.Reverse(dirs)
	var first error
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) && first == nil {
			first = err
		}
	}
	return first
}
