// Package kubelet stands in, in fleetmq's end-to-end tests, scale harness
// and local dev mode, for the parts of Kubernetes envtest does not run: the
// StatefulSet controller and the kubelet. For every replica of every
// StatefulSet the operator manages it
//
//   - creates the Pod object (<sts>-<ordinal>, the template's labels, owned
//     by the StatefulSet),
//   - lays the pod's ConfigMap and Secret volumes out under a per-pod root
//     directory (<root>/<mountPath>), written and later updated the way the
//     kubelet does (timestamped directory, atomic `..data` symlink swap,
//     visible files as symlinks through it),
//   - gives the pod a loopback IP of its own (127.0.0.2, 127.0.0.3, …) and
//     starts the container's binary (fleetmq-broker) with the template's
//     args, absolute paths moved under the pod root,
//   - probes the container's readiness probe and writes the Pod status
//     (podIP, Ready) and the StatefulSet status (readyReplicas), and
//     restarts the process when it dies (restartCount), and rolls the pod
//     when the template changes.
//
// The one translation a real pod does not need: the broker configuration
// file named by --config refers to absolute paths and to wildcard listener
// addresses. It is parsed with broker/config, its paths are moved under
// the pod root and its listeners bound to the pod's IP, and written back.
// Nothing of the operator or the broker is changed or faked.
package kubelet

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fleetmq/fleetmq/broker/config"
	"github.com/fleetmq/fleetmq/internal/resource"
)

// Options configure a Kubelet.
type Options struct {
	// Config reaches the API server.
	Config *rest.Config
	// Scheme knows apps/v1 and core/v1.
	Scheme *runtime.Scheme
	// Binary is what every container runs (the image's entrypoint).
	Binary string
	// Dir holds the pod root directories.
	Dir string
	// FirstIP is the first pod IP handed out (127.0.0.2 when nil). Every
	// pod IP must be a loopback address.
	FirstIP net.IP
	// Logf, when set, receives what the kubelet does.
	Logf func(format string, args ...any)
}

// Kubelet runs StatefulSet pods as local processes. See the package doc.
type Kubelet struct {
	opts  Options
	c     client.Client // direct: writes and reads of what we own
	cache cache.Cache   // StatefulSets, ConfigMaps, Secrets
	kick  chan struct{}
	ips   *ipPool
	http  *http.Client

	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	pods map[types.NamespacedName]*pod // guarded by mu; written only by the sync loop
}

// pod is one replica. Its fields are the sync loop's, except ready, which
// the prober writes under Kubelet.mu; proc and restarts, which Pod reads,
// the sync loop writes under Kubelet.mu too.
type pod struct {
	key     types.NamespacedName
	sts     string
	ordinal int
	ip      string
	root    string
	tmpl    string // hash of the template the pod runs
	uid     types.UID

	volumesReady bool
	proc         *process
	restarts     int // written under Kubelet.mu
	started      metav1.Time
	ready        bool // guarded by Kubelet.mu
	written      podStatus
}

// podStatus is what the Pod object's status was last set to.
type podStatus struct {
	running, ready bool
	restarts       int
	ip             string
}

// process is one run of the container.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd.Wait returned
	err    error         // cmd.Wait's, readable after exited
}

// PodInfo describes a running pod for tests.
type PodInfo struct {
	Namespace, Name string
	IP              string
	PID             int
	Restarts        int
	Ready           bool
	Root            string
}

// Start watches the API server and runs pods until Stop.
func Start(ctx context.Context, opts Options) (*Kubelet, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	first := opts.FirstIP
	if first == nil {
		first = net.IPv4(127, 0, 0, 2)
	}
	if !first.IsLoopback() {
		return nil, fmt.Errorf("kubelet: FirstIP %s is not a loopback address", first)
	}
	c, err := client.New(opts.Config, client.Options{Scheme: opts.Scheme})
	if err != nil {
		return nil, err
	}
	ca, err := cache.New(opts.Config, cache.Options{Scheme: opts.Scheme})
	if err != nil {
		return nil, err
	}
	k := &Kubelet{
		opts: opts, c: c, cache: ca,
		kick: make(chan struct{}, 1),
		ips:  newIPPool(first),
		// Like a kubelet, HTTPS probes do not verify the certificate.
		http: &http.Client{Timeout: time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a probe, as the kubelet's
		}},
		done: make(chan struct{}),
		pods: map[types.NamespacedName]*pod{},
	}
	ctx, k.cancel = context.WithCancel(ctx)
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { k.poke() },
		UpdateFunc: func(any, any) { k.poke() },
		DeleteFunc: func(any) { k.poke() },
	}
	for _, obj := range []client.Object{&appsv1.StatefulSet{}, &corev1.ConfigMap{}, &corev1.Secret{}} {
		inf, err := ca.GetInformer(ctx, obj)
		if err != nil {
			k.cancel()
			return nil, fmt.Errorf("kubelet: informer for %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			k.cancel()
			return nil, err
		}
	}
	cacheDone := make(chan struct{})
	go func() {
		defer close(cacheDone)
		if err := ca.Start(ctx); err != nil {
			opts.Logf("kubelet: cache: %v", err)
		}
	}()
	if !ca.WaitForCacheSync(ctx) {
		k.cancel()
		<-cacheDone
		return nil, errors.New("kubelet: cache did not sync")
	}
	go func() {
		defer close(k.done)
		defer func() { <-cacheDone }()
		k.loop(ctx)
	}()
	return k, nil
}

// Stop ends the watch and every process (SIGTERM, then SIGKILL after 10s).
// Pod objects stay.
func (k *Kubelet) Stop() {
	k.cancel()
	<-k.done
	k.mu.Lock()
	pods := make([]*pod, 0, len(k.pods))
	for _, p := range k.pods {
		pods = append(pods, p)
	}
	k.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Go(func() { k.stopProcess(p) })
	}
	wg.Wait()
	k.ips.close()
}

// Pod reports a pod the kubelet runs.
func (k *Kubelet) Pod(namespace, name string) (PodInfo, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.pods[types.NamespacedName{Namespace: namespace, Name: name}]
	if !ok {
		return PodInfo{}, false
	}
	info := PodInfo{Namespace: namespace, Name: name, IP: p.ip, Restarts: p.restarts, Ready: p.ready, Root: p.root}
	if p.proc != nil {
		info.PID = p.proc.cmd.Process.Pid
	}
	return info, true
}

// Kill sends SIGKILL to the pod's process, as an OOM kill or a crash
// would end it; the kubelet marks the pod not ready and restarts it.
func (k *Kubelet) Kill(namespace, name string) error {
	k.mu.Lock()
	p, ok := k.pods[types.NamespacedName{Namespace: namespace, Name: name}]
	var proc *process
	if ok {
		proc = p.proc
	}
	k.mu.Unlock()
	if proc == nil {
		return fmt.Errorf("kubelet: no process for pod %s/%s", namespace, name)
	}
	return proc.cmd.Process.Kill()
}

// Logs returns the output of the pod's broker process (all its runs).
func (k *Kubelet) Logs(namespace, name string) string {
	k.mu.Lock()
	p, ok := k.pods[types.NamespacedName{Namespace: namespace, Name: name}]
	k.mu.Unlock()
	if !ok {
		return ""
	}
	data, _ := os.ReadFile(filepath.Join(p.root, "..log"))
	return string(data)
}

func (k *Kubelet) poke() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

func (k *Kubelet) loop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := k.sync(ctx); err != nil && ctx.Err() == nil {
			k.opts.Logf("kubelet: %v", err)
			time.AfterFunc(100*time.Millisecond, k.poke)
		}
		select {
		case <-ctx.Done():
			return
		case <-k.kick:
		case <-tick.C:
		}
	}
}

// sync brings the pods in line with the StatefulSets, once.
func (k *Kubelet) sync(ctx context.Context) error {
	var list appsv1.StatefulSetList
	if err := k.cache.List(ctx, &list, client.MatchingLabels{resource.LabelManagedBy: resource.FieldManager}); err != nil {
		return err
	}
	desired := map[types.NamespacedName]*appsv1.StatefulSet{}
	ordinals := map[types.NamespacedName]int{}
	for i := range list.Items {
		sts := &list.Items[i]
		if !sts.DeletionTimestamp.IsZero() {
			continue
		}
		n := 1
		if sts.Spec.Replicas != nil {
			n = int(*sts.Spec.Replicas)
		}
		for o := range n {
			key := types.NamespacedName{Namespace: sts.Namespace, Name: sts.Name + "-" + strconv.Itoa(o)}
			desired[key] = sts
			ordinals[key] = o
		}
	}

	var errs []error
	k.mu.Lock()
	var gone []*pod
	for key, p := range k.pods {
		if desired[key] == nil {
			gone = append(gone, p)
		}
	}
	k.mu.Unlock()
	for _, p := range gone {
		errs = append(errs, k.deletePod(ctx, p))
	}
	keys := make([]types.NamespacedName, 0, len(desired))
	for key := range desired {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b types.NamespacedName) int { return strings.Compare(a.String(), b.String()) })
	for _, key := range keys {
		errs = append(errs, k.syncPod(ctx, desired[key], key, ordinals[key]))
	}
	for i := range list.Items {
		errs = append(errs, k.syncStatefulSetStatus(ctx, &list.Items[i]))
	}
	return errors.Join(errs...)
}

func templateHash(sts *appsv1.StatefulSet) string {
	data, _ := json.Marshal(sts.Spec.Template)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:10]
}

func (k *Kubelet) syncPod(ctx context.Context, sts *appsv1.StatefulSet, key types.NamespacedName, ordinal int) error {
	hash := templateHash(sts)
	k.mu.Lock()
	p := k.pods[key]
	k.mu.Unlock()
	if p != nil && p.tmpl != hash {
		// A new template: the StatefulSet controller replaces the pod.
		k.opts.Logf("kubelet: %s: template changed, replacing the pod", key)
		if err := k.deletePod(ctx, p); err != nil {
			return err
		}
		p = nil
	}
	if p == nil {
		ip, err := k.ips.get(containerPorts(sts))
		if err != nil {
			return fmt.Errorf("pod %s: %w", key, err)
		}
		p = &pod{
			key: key, sts: sts.Name, ordinal: ordinal, ip: ip, tmpl: hash,
			root: filepath.Join(k.opts.Dir, key.Namespace, key.Name),
		}
		if err := os.MkdirAll(p.root, 0o755); err != nil {
			return err
		}
		k.mu.Lock()
		k.pods[key] = p
		k.mu.Unlock()
		k.opts.Logf("kubelet: %s: new pod with IP %s", key, ip)
	}
	if p.uid == "" {
		if err := k.createPodObject(ctx, sts, p); err != nil {
			return err
		}
	}

	ready, err := k.syncVolumes(ctx, sts, p)
	if err != nil {
		return fmt.Errorf("pod %s: volumes: %w", key, err)
	}
	if ready && !p.volumesReady {
		p.volumesReady = true
	}
	if p.volumesReady && (p.proc == nil || p.proc.hasExited()) {
		if p.proc != nil {
			k.opts.Logf("kubelet: %s: container exited (%v); restarting", key, p.proc.err)
			k.mu.Lock() // Pod reads restarts
			p.restarts++
			k.mu.Unlock()
		}
		if err := k.startProcess(ctx, sts, p); err != nil {
			return fmt.Errorf("pod %s: start: %w", key, err)
		}
	}
	return k.syncPodStatus(ctx, p)
}

func containerPorts(sts *appsv1.StatefulSet) []int {
	var ports []int
	for _, c := range sts.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			ports = append(ports, int(p.ContainerPort))
		}
	}
	return ports
}

func (k *Kubelet) createPodObject(ctx context.Context, sts *appsv1.StatefulSet, p *pod) error {
	tmpl := sts.Spec.Template.DeepCopy()
	labels := map[string]string{}
	for k, v := range tmpl.Labels {
		labels[k] = v
	}
	labels[appsv1.StatefulSetPodNameLabel] = p.key.Name
	labels[appsv1.PodIndexLabel] = strconv.Itoa(p.ordinal)
	labels[appsv1.ControllerRevisionHashLabelKey] = sts.Name + "-" + p.tmpl
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: p.key.Namespace, Name: p.key.Name,
			Labels: labels, Annotations: tmpl.Annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "StatefulSet", Name: sts.Name, UID: sts.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: tmpl.Spec,
	}
	obj.Spec.Hostname = p.key.Name
	obj.Spec.Subdomain = sts.Spec.ServiceName
	err := k.c.Create(ctx, obj)
	if apierrors.IsAlreadyExists(err) {
		// Left over from an earlier kubelet or an earlier pod of this name:
		// replace it, as a new pod has a new identity.
		if err := k.c.Delete(ctx, obj, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return fmt.Errorf("pod %s existed; deleted it, will create again", p.key)
	}
	if err != nil {
		return fmt.Errorf("create pod %s: %w", p.key, err)
	}
	p.uid = obj.UID
	p.written = podStatus{}
	return nil
}

// syncVolumes writes every ConfigMap and Secret volume the container
// mounts, creates directories for the others, and reports whether all
// could be provided (a missing ConfigMap or Secret keeps the pod pending).
func (k *Kubelet) syncVolumes(ctx context.Context, sts *appsv1.StatefulSet, p *pod) (bool, error) {
	spec := sts.Spec.Template.Spec
	c := spec.Containers[0]
	configPath := flagValue(c.Args, "config")
	claims := map[string]bool{}
	for _, pvc := range sts.Spec.VolumeClaimTemplates {
		claims[pvc.Name] = true
	}
	ready := true
	for _, m := range c.VolumeMounts {
		if m.SubPath != "" || m.SubPathExpr != "" {
			return false, fmt.Errorf("mount %s: subPath is not supported", m.Name)
		}
		dir := filepath.Join(p.root, m.MountPath)
		vol := findVolume(spec.Volumes, m.Name)
		switch {
		case vol == nil && claims[m.Name], vol != nil && (vol.EmptyDir != nil || vol.PersistentVolumeClaim != nil):
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return false, err
			}
		case vol != nil && (vol.ConfigMap != nil || vol.Secret != nil || vol.Projected != nil):
			files, mode, ok, err := k.volumeFiles(ctx, p.key.Namespace, vol)
			if err != nil {
				return false, err
			}
			if !ok {
				ready = false
				continue
			}
			for rel, data := range files {
				if path.Join(m.MountPath, filepath.ToSlash(rel)) == configPath {
					if files[rel], err = p.rewriteConfig(data); err != nil {
						return false, fmt.Errorf("%s: %w", configPath, err)
					}
				}
			}
			changed, err := writeVolume(dir, files, mode)
			if err != nil {
				return false, err
			}
			if changed {
				k.opts.Logf("kubelet: %s: volume %s written (%s)", p.key, m.Name, strings.Join(sortedKeys(files), ", "))
			}
		default:
			return false, fmt.Errorf("mount %s: volume kind not supported", m.Name)
		}
	}
	return ready, nil
}

func findVolume(vs []corev1.Volume, name string) *corev1.Volume {
	for i := range vs {
		if vs[i].Name == name {
			return &vs[i]
		}
	}
	return nil
}

// volumeFiles is the content of a ConfigMap or Secret volume: its items,
// or every key. ok is false while the object (or a listed key) is missing.
// A projected volume is the union of its ConfigMap and Secret sources; an
// optional source whose object is missing adds nothing.
func (k *Kubelet) volumeFiles(ctx context.Context, ns string, v *corev1.Volume) (map[string][]byte, os.FileMode, bool, error) {
	if v.Projected != nil {
		return k.projectedFiles(ctx, ns, v.Projected)
	}
	var data map[string][]byte
	var items []corev1.KeyToPath
	var optional bool
	mode := os.FileMode(0o644)
	switch {
	case v.ConfigMap != nil:
		var cm corev1.ConfigMap
		err := k.cache.Get(ctx, types.NamespacedName{Namespace: ns, Name: v.ConfigMap.Name}, &cm)
		if err != nil {
			return nil, 0, false, client.IgnoreNotFound(err)
		}
		data = map[string][]byte{}
		for key, val := range cm.Data {
			data[key] = []byte(val)
		}
		for key, val := range cm.BinaryData {
			data[key] = val
		}
		items, optional = v.ConfigMap.Items, ptr.Deref(v.ConfigMap.Optional, false)
		if v.ConfigMap.DefaultMode != nil {
			mode = os.FileMode(*v.ConfigMap.DefaultMode)
		}
	default:
		var s corev1.Secret
		err := k.cache.Get(ctx, types.NamespacedName{Namespace: ns, Name: v.Secret.SecretName}, &s)
		if err != nil {
			return nil, 0, false, client.IgnoreNotFound(err)
		}
		data = s.Data
		items, optional = v.Secret.Items, ptr.Deref(v.Secret.Optional, false)
		if v.Secret.DefaultMode != nil {
			mode = os.FileMode(*v.Secret.DefaultMode)
		}
	}
	files := map[string][]byte{}
	if len(items) == 0 {
		for key, val := range data {
			files[key] = val
		}
		return files, mode, true, nil
	}
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, 0, false, nil
		}
		files[filepath.FromSlash(it.Path)] = val
	}
	return files, mode, true, nil
}

// projectedFiles is volumeFiles of a projected volume.
func (k *Kubelet) projectedFiles(ctx context.Context, ns string, p *corev1.ProjectedVolumeSource) (map[string][]byte, os.FileMode, bool, error) {
	files := map[string][]byte{}
	for i, src := range p.Sources {
		var one corev1.Volume
		optional := false
		switch {
		case src.Secret != nil:
			one.Secret = &corev1.SecretVolumeSource{SecretName: src.Secret.Name, Items: src.Secret.Items, Optional: src.Secret.Optional}
			optional = ptr.Deref(src.Secret.Optional, false)
		case src.ConfigMap != nil:
			one.ConfigMap = &corev1.ConfigMapVolumeSource{LocalObjectReference: src.ConfigMap.LocalObjectReference, Items: src.ConfigMap.Items, Optional: src.ConfigMap.Optional}
			optional = ptr.Deref(src.ConfigMap.Optional, false)
		default:
			return nil, 0, false, fmt.Errorf("projected source %d: kind not supported", i)
		}
		got, _, ok, err := k.volumeFiles(ctx, ns, &one)
		if err != nil {
			return nil, 0, false, err
		}
		if !ok && !optional {
			return nil, 0, false, nil
		}
		maps.Copy(files, got)
	}
	mode := os.FileMode(0o644)
	if p.DefaultMode != nil {
		mode = os.FileMode(*p.DefaultMode)
	}
	return files, mode, true, nil
}

// rewriteConfig moves the broker configuration's absolute paths under the
// pod root and binds its listeners to the pod IP. It is parsed with
// broker/config (strictly, as the broker will) and then rewritten by
// convention rather than field by field, so listeners and files the
// configuration gains later are covered: every string under a key ending
// in "File" or "Dir" is a path; every host:port string under "listeners"
// is a listen address.
func (p *pod) rewriteConfig(data []byte) ([]byte, error) {
	raw := filepath.Join(p.root, "..config.raw.yaml")
	if err := os.WriteFile(raw, data, 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(raw)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	if err := json.Unmarshal(js, &tree); err != nil {
		return nil, err
	}
	p.rewriteTree(tree, false)
	if js, err = json.Marshal(tree); err != nil {
		return nil, err
	}
	var out config.Config
	if err := json.Unmarshal(js, &out); err != nil {
		return nil, err
	}
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("rewritten config: %w", err)
	}
	return config.Marshal(out)
}

func (p *pod) rewriteTree(m map[string]any, inListeners bool) {
	for key, v := range m {
		switch v := v.(type) {
		case map[string]any:
			p.rewriteTree(v, inListeners || key == "listeners")
		case string:
			switch {
			case strings.HasSuffix(key, "File") || strings.HasSuffix(key, "Dir"):
				m[key] = p.hostPath(v)
			case inListeners:
				if _, port, err := net.SplitHostPort(v); err == nil {
					if _, err := strconv.Atoi(port); err == nil {
						m[key] = net.JoinHostPort(p.ip, port)
					}
				}
			}
		}
	}
}

// hostPath is where an absolute path of the container lives on this host.
func (p *pod) hostPath(s string) string {
	if !path.IsAbs(s) {
		return s
	}
	return filepath.Join(p.root, filepath.FromSlash(s))
}

// flagValue finds --name VALUE or --name=VALUE in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		a = strings.TrimLeft(a, "-")
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func (k *Kubelet) startProcess(ctx context.Context, sts *appsv1.StatefulSet, p *pod) error {
	c := sts.Spec.Template.Spec.Containers[0]
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		if name, val, ok := strings.Cut(a, "="); ok && strings.HasPrefix(name, "-") {
			args[i] = name + "=" + p.hostPath(val)
		} else {
			args[i] = p.hostPath(a)
		}
	}
	env := []string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			return fmt.Errorf("env %s: valueFrom is not supported", e.Name)
		}
		env = append(env, e.Name+"="+e.Value)
	}
	out, err := os.OpenFile(filepath.Join(p.root, "..log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "---- kubelet: start %s %s (restart %d) ----\n", k.opts.Binary, strings.Join(args, " "), p.restarts)
	cmd := exec.Command(k.opts.Binary, args...)
	cmd.Dir, cmd.Env = p.root, env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	dieWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	proc := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		proc.err = cmd.Wait()
		out.Close()
		close(proc.exited)
		k.poke()
	}()
	k.mu.Lock()
	p.proc, p.ready = proc, false
	k.mu.Unlock()
	p.started = metav1.Now()
	k.opts.Logf("kubelet: %s: started pid %d on %s", p.key, cmd.Process.Pid, p.ip)

	probeURL := ""
	if rp := c.ReadinessProbe; rp != nil && rp.HTTPGet != nil {
		port := namedPort(c, rp.HTTPGet.Port)
		scheme := strings.ToLower(string(rp.HTTPGet.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		probeURL = scheme + "://" + net.JoinHostPort(p.ip, strconv.Itoa(port)) + rp.HTTPGet.Path
	}
	go k.probe(ctx, p, proc, probeURL)
	return nil
}

func namedPort(c corev1.Container, port intstr.IntOrString) int {
	if port.Type == intstr.Int {
		return port.IntValue()
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort)
		}
	}
	return 0
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// probe runs the readiness probe of one process until it exits: every
// 100 ms until ready, then every 500 ms.
func (k *Kubelet) probe(ctx context.Context, p *pod, proc *process, url string) {
	ready := false
	for {
		wait := 100 * time.Millisecond
		if ready {
			wait = 500 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-proc.exited:
			k.setReady(p, proc, false)
			return
		case <-time.After(wait):
		}
		ok := url == ""
		if !ok {
			resp, err := k.http.Get(url)
			if err == nil {
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
			}
		}
		if ok != ready {
			ready = ok
			k.setReady(p, proc, ok)
		}
	}
}

func (k *Kubelet) setReady(p *pod, proc *process, ready bool) {
	k.mu.Lock()
	if p.proc == proc && p.ready != ready {
		p.ready = ready
		k.mu.Unlock()
		k.poke()
		return
	}
	k.mu.Unlock()
}

func (k *Kubelet) syncPodStatus(ctx context.Context, p *pod) error {
	k.mu.Lock()
	want := podStatus{ready: p.ready, restarts: p.restarts, ip: p.ip, running: p.proc != nil && !p.proc.hasExited()}
	k.mu.Unlock()
	if want == p.written {
		return nil
	}
	var obj corev1.Pod
	if err := k.c.Get(ctx, p.key, &obj); err != nil {
		return err
	}
	if obj.UID != p.uid {
		return fmt.Errorf("pod %s was replaced behind the kubelet's back", p.key)
	}
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		c := corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()}
		for _, old := range obj.Status.Conditions {
			if old.Type == t && old.Status == s {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		return c
	}
	st := corev1.PodStatus{
		Phase:     corev1.PodPending,
		HostIP:    "127.0.0.1",
		HostIPs:   []corev1.HostIP{{IP: "127.0.0.1"}},
		StartTime: &p.started,
		Conditions: []corev1.PodCondition{
			cond(corev1.PodScheduled, true),
			cond(corev1.PodInitialized, true),
			cond(corev1.ContainersReady, want.ready),
			cond(corev1.PodReady, want.ready),
		},
	}
	cs := corev1.ContainerStatus{
		Name: resource.ContainerName, Image: obj.Spec.Containers[0].Image, ImageID: "local://" + k.opts.Binary,
		Ready: want.ready, RestartCount: int32(want.restarts), Started: ptr.To(want.running),
	}
	if want.running {
		st.Phase = corev1.PodRunning
		st.PodIP, st.PodIPs = p.ip, []corev1.PodIP{{IP: p.ip}}
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: p.started}
	} else {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		if p.proc != nil {
			cs.State.Waiting.Reason = "CrashLoopBackOff"
			st.PodIP, st.PodIPs = p.ip, []corev1.PodIP{{IP: p.ip}}
		}
	}
	st.ContainerStatuses = []corev1.ContainerStatus{cs}
	obj.Status = st
	if err := k.c.Status().Update(ctx, &obj); err != nil {
		return fmt.Errorf("pod %s status: %w", p.key, err)
	}
	p.written = want
	return nil
}

// syncStatefulSetStatus does the StatefulSet controller's status part.
func (k *Kubelet) syncStatefulSetStatus(ctx context.Context, sts *appsv1.StatefulSet) error {
	hash := templateHash(sts)
	var replicas, ready, updated int32
	k.mu.Lock()
	for _, p := range k.pods {
		if p.key.Namespace != sts.Namespace || p.sts != sts.Name {
			continue
		}
		replicas++
		if p.ready {
			ready++
		}
		if p.tmpl == hash {
			updated++
		}
	}
	k.mu.Unlock()
	rev := sts.Name + "-" + hash
	want := appsv1.StatefulSetStatus{
		ObservedGeneration: sts.Generation,
		Replicas:           replicas, ReadyReplicas: ready, AvailableReplicas: ready,
		CurrentReplicas: updated, UpdatedReplicas: updated,
		CurrentRevision: rev, UpdateRevision: rev,
		CollisionCount: sts.Status.CollisionCount,
	}
	cur := sts.Status
	cur.Conditions = nil
	if equalStatus(cur, want) {
		return nil
	}
	obj := sts.DeepCopy()
	obj.Status = want
	if err := k.c.Status().Update(ctx, obj); err != nil {
		return fmt.Errorf("statefulset %s/%s status: %w", sts.Namespace, sts.Name, err)
	}
	return nil
}

func equalStatus(a, b appsv1.StatefulSetStatus) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// deletePod stops the pod's process, deletes its Pod object and forgets it.
func (k *Kubelet) deletePod(ctx context.Context, p *pod) error {
	k.stopProcess(p)
	k.mu.Lock()
	delete(k.pods, p.key)
	k.mu.Unlock()
	k.opts.Logf("kubelet: %s: deleted", p.key)
	if p.uid == "" {
		return nil
	}
	obj := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.key.Namespace, Name: p.key.Name}}
	err := k.c.Delete(ctx, obj, client.GracePeriodSeconds(0), client.Preconditions{UID: &p.uid})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s: %w", p.key, err)
	}
	return nil
}

// stopProcess sends SIGTERM, waits up to 10 s, then kills.
func (k *Kubelet) stopProcess(p *pod) {
	k.mu.Lock()
	proc := p.proc
	k.mu.Unlock()
	if proc == nil || proc.hasExited() {
		return
	}
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-proc.exited:
	case <-time.After(10 * time.Second):
		_ = proc.cmd.Process.Kill()
		<-proc.exited
	}
}
