package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

// The channel between the webhook and its runner is one Unix socket
// connection, made before any program runs: the runner accepts a single
// connection, then closes its listener and removes the socket, so nothing a
// run starts (same UID, same network namespace, the same socket volume) can
// ask it for runs or see other invocations. A peer must have the runner's UID
// and must not be one of its descendants (which every process of a run stays:
// the runner is their subreaper). When the connection ends the runner ends
// too, and with it, as PID 1's child in its container, every run; a webhook
// that connects again finds a runner that has run nothing yet. A run could
// bind a socket of its own at the path once the runner removed it, but such a
// listener dies with the runner before the webhook can connect again.

// EnvSocket names the Unix socket of the runner, in the runner and the webhook.
const EnvSocket = "EXEC_RUNNER_SOCKET"

// MakeNonDumpable stops processes of this UID (a run) from reading this
// process's /proc/<pid>/environ and memory or attaching to it; a program's
// execve makes it dumpable again, so containment can still read its marker.
func MakeNonDumpable() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("PR_SET_DUMPABLE: %w", err)
	}
	return nil
}

// AcceptWebhook listens on path and returns the first connection from a peer
// that is not one of this process's descendants and has its UID; the socket
// is removed before it returns, so no second connection can be made.
func AcceptWebhook(ctx context.Context, path string, log logr.Logger) (*net.UnixConn, error) {
	// As a subreaper from the start, every process a run leaves stays this
	// process's descendant, and so can never pass for the webhook.
	if err := descendants.setup(); err != nil {
		return nil, err
	}
	// A socket left by an earlier runner of this container would stop the bind.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) { //nolint:gosec // the admin names the socket (EXEC_RUNNER_SOCKET).
		return nil, fmt.Errorf("removing the old socket %s: %w", path, err)
	}
	listener, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	listener.SetUnlinkOnClose(true)
	defer listener.Close() //nolint:errcheck // the connection is what counts.
	stop := context.AfterFunc(ctx, func() { _ = listener.Close() })
	defer stop()
	for {
		conn, err := listener.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("accepting on %s: %w", path, err)
		}
		if err := checkPeer(conn); err != nil {
			log.Error(err, "refused a connection to the runner")
			_ = conn.Close()
			continue
		}
		return conn, nil
	}
}

// checkPeer refuses a peer of another UID, or one that descends from this
// process: a run, or a process a run started.
func checkPeer(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("reading the peer's credentials: %w", credErr)
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("peer runs as UID %d, not the runner's %d", cred.Uid, os.Getuid())
	}
	// A PID of 0 is a process outside this PID namespace: the webhook's
	// container, as the chart installs it.
	if cred.Pid != 0 && descendsFrom(int(cred.Pid), os.Getpid()) {
		return fmt.Errorf("peer PID %d is a process a run started", cred.Pid)
	}
	return nil
}

// descendsFrom reports whether pid is ancestor's descendant, by its parents
// in /proc. A process whose parent cannot be read (it ended) counts as one,
// so a peer that vanishes is refused.
func descendsFrom(pid, ancestor int) bool {
	for pid > 1 {
		if pid == ancestor {
			return true
		}
		parent, err := parentOf(pid)
		if err != nil {
			return true
		}
		pid = parent
	}
	return false
}

func parentOf(pid int) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses; fields resume after the last ')'.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fields) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	return strconv.Atoi(fields[1])
}

// Serve answers the webhook's invocations on conn, each in its own goroutine,
// until conn closes; then it ends the runs still in flight, waits for them
// and returns.
func Serve(conn net.Conn, local *Local) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	server := rpc.NewServer()
	if err := server.RegisterName(serviceName, &service{local: local, ctx: ctx}); err != nil {
		panic(err) // the service's methods are fixed: every test of the channel would fail.
	}
	// ServeCodec waits for the calls in flight before it returns; ending the
	// connection must end them.
	server.ServeCodec(&endingCodec{ServerCodec: jsonrpc.NewServerCodec(conn), end: cancel})
}

// endingCodec calls end once no more requests can be read.
type endingCodec struct {
	rpc.ServerCodec
	end func()
}

func (c *endingCodec) ReadRequestHeader(r *rpc.Request) error {
	err := c.ServerCodec.ReadRequestHeader(r)
	if err != nil {
		c.end()
	}
	return err
}

const serviceName = "Runner"

// service is the runner's side of the channel.
type service struct {
	local *Local
	ctx   context.Context
}

// WireRequest is an invocation on the wire, with the time left for it
// (exported, as net/rpc requires).
type WireRequest struct {
	Invocation Invocation
	Timeout    time.Duration
}

// WireReply is a result on the wire, with the run's error.
type WireReply struct {
	Result Result
	Err    *wireError
}

// wireError carries a run's error: a *RunError field by field, other errors
// as their text.
type wireError struct {
	Run      *RunError
	StartErr string
	Text     string
}

// Run is the channel's one method.
func (s *service) Run(req WireRequest, rep *WireReply) error {
	ctx, cancel := context.WithTimeout(s.ctx, req.Timeout)
	defer cancel()
	res, err := s.local.Run(ctx, req.Invocation)
	rep.Result = res
	if err != nil {
		rep.Err = &wireError{Text: err.Error()}
		var runErr *RunError
		if errors.As(err, &runErr) {
			rep.Err.Run = runErr
			if runErr.StartErr != nil {
				rep.Err.StartErr = runErr.StartErr.Error()
			}
		}
	}
	return nil
}

// error rebuilds the run's error on the webhook's side.
func (e *wireError) error() error {
	if e == nil {
		return nil
	}
	if e.Run == nil {
		return errors.New(e.Text)
	}
	runErr := *e.Run
	if e.StartErr != "" {
		runErr.StartErr = errors.New(e.StartErr)
	}
	return &runErr
}

var _ Runner = (*Client)(nil)

// Client runs invocations in the runner at the other end of a Unix socket.
type Client struct {
	path string
	log  logr.Logger

	mu     sync.Mutex
	client *rpc.Client
}

// Dial connects to the runner at path, trying again until ctx ends: the
// runner's container may start after the webhook's.
func Dial(ctx context.Context, path string, log logr.Logger) (*Client, error) {
	c := &Client{path: path, log: log}
	for {
		_, err := c.connected(ctx)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// connected returns the connection to the runner, connecting again if the
// last one was lost (the runner then started anew, with no run in flight).
func (c *Client) connected(ctx context.Context) (*rpc.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, fmt.Errorf("the runner does not answer on %s: %w", c.path, err)
	}
	c.client = jsonrpc.NewClient(conn)
	return c.client, nil
}

// forget drops a connection that failed, so the next run connects again.
func (c *Client) forget(client *rpc.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == client {
		_ = client.Close()
		c.client = nil
	}
}

// Run sends inv to the runner and waits for its result, or for ctx to end;
// the runner ends the run at ctx's deadline too.
func (c *Client) Run(ctx context.Context, inv Invocation) (Result, error) {
	client, err := c.connected(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("program %q %s: %w (cert-manager will retry)", inv.Program, inv.Action, err)
	}
	req := WireRequest{Invocation: inv, Timeout: time.Hour}
	if deadline, ok := ctx.Deadline(); ok {
		req.Timeout = time.Until(deadline)
	}
	var rep WireReply
	call := client.Go(serviceName+".Run", req, &rep, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("program %q %s: no answer from the runner before the request ended: %w", inv.Program, inv.Action, ctx.Err())
	}
	if call.Error != nil {
		c.forget(client)
		c.log.Error(call.Error, "the connection to the runner failed; connecting again for the next run")
		return Result{}, fmt.Errorf("program %q %s: the connection to the runner failed (cert-manager will retry): %w", inv.Program, inv.Action, call.Error)
	}
	return rep.Result, rep.Err.error()
}

// Close ends the connection to the runner, and so the runner.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		return nil
	}
	err := c.client.Close()
	c.client = nil
	return err
}
