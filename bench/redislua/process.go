package redislua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoRedis is returned by StartRedis when redis-server is not on PATH.
var ErrNoRedis = errors.New("redis-server is not on PATH: install it (Debian: apt-get install redis-server) to compare with Redis")

// Startup bounds.
const (
	startTimeout = 10 * time.Second
	startTries   = 3 // ports picked: another process may take one first
	stopTimeout  = 5 * time.Second
)

// Process is a redis-server this process started: on 127.0.0.1 at a free
// port, in a temporary directory, with persistence off (no RDB snapshots,
// no AOF), so that it is the fastest Redis can be.
type Process struct {
	cmd  *exec.Cmd
	dir  string
	addr string
	exit chan error
}

// StartRedis starts redis-server from PATH and returns once it answers
// PING, or fails within startTimeout a try.
func StartRedis(ctx context.Context) (*Process, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedis
	}
	var errs []error
	for range startTries {
		p, err := start(ctx, bin)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("starting redis-server: %w", errors.Join(errs...))
}

func start(ctx context.Context, bin string) (*Process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "allot-bench-redis-")
	if err != nil {
		return nil, err
	}
	p := &Process{dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exit: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning")
	out, err := os.Create(dir + "/redis.log")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		out.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	go func() {
		p.exit <- p.cmd.Wait()
		out.Close()
	}()
	if err := p.waitReady(ctx); err != nil {
		log, _ := os.ReadFile(dir + "/redis.log")
		return nil, errors.Join(fmt.Errorf("redis-server on %s: %w: %s", p.addr, err, log), p.Stop())
	}
	return p, nil
}

// waitReady polls PING until it answers, the process exits or
// startTimeout passes.
func (p *Process) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	for {
		err := rdb.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case werr := <-p.exit:
			p.exit <- werr // for Stop
			return fmt.Errorf("exited: %v", werr)
		case <-ctx.Done():
			return fmt.Errorf("no answer to PING: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Addr is host:port of the server.
func (p *Process) Addr() string { return p.addr }

// Stop kills the server, waits for it to exit and removes its directory.
func (p *Process) Stop() error {
	p.cmd.Process.Kill() // an error only says it has exited already
	select {
	case <-p.exit:
	case <-time.After(stopTimeout):
		return fmt.Errorf("redis-server pid %d did not exit", p.cmd.Process.Pid)
	}
	return os.RemoveAll(p.dir)
}

// freePort asks the kernel for a free port on 127.0.0.1. Another process
// may take it before redis-server binds it; StartRedis then tries again.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
