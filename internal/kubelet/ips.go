package kubelet

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// ipPool hands out loopback pod IPs in order, never the same one twice in
// a run. An IP is taken only when a lock file of its own can be locked
// (another e2e run on the machine may be using it) and every port the pod
// will listen on is free on it (another program may be).
type ipPool struct {
	mu   sync.Mutex
	next uint32
	dir  string
	held []*os.File
}

func newIPPool(first net.IP) *ipPool {
	return &ipPool{
		next: binary.BigEndian.Uint32(first.To4()),
		dir:  filepath.Join(os.TempDir(), "fleetmq-e2e-pod-ips"),
	}
}

func (p *ipPool) get(ports []int) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := os.MkdirAll(p.dir, 0o777); err != nil {
		return "", err
	}
	for range 1000 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], p.next)
		p.next++
		ip := net.IP(b[:])
		if !ip.IsLoopback() {
			break
		}
		if b[3] == 0 || b[3] == 255 {
			continue
		}
		f, ok := lockFile(filepath.Join(p.dir, ip.String()+".lock"))
		if !ok {
			continue
		}
		if !portsFree(ip.String(), ports) {
			f.Close()
			continue
		}
		p.held = append(p.held, f)
		return ip.String(), nil
	}
	return "", fmt.Errorf("no free loopback IP left")
}

func portsFree(ip string, ports []int) bool {
	for _, port := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// close releases every IP.
func (p *ipPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.held {
		f.Close()
	}
	p.held = nil
}

// ReserveIP hands a test a loopback IP of the pool, with ports free on it,
// for a process of its own that must look like a pod (held until Stop).
func (k *Kubelet) ReserveIP(ports ...int) (string, error) { return k.ips.get(ports) }
