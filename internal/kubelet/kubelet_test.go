package kubelet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleetmq/fleetmq/broker/config"
)

func TestRewriteConfig(t *testing.T) {
	root := t.TempDir()
	p := &pod{root: root, ip: "127.0.0.9"}
	in := `listeners:
  mqtt: ":1883"
  admin: ":8081"
  adminTLS:
    certFile: /etc/fleetmq/tls/tls.crt
    keyFile: /etc/fleetmq/tls/tls.key
authFile: /etc/fleetmq/auth/bundle.json
adminTokenFile: /etc/fleetmq/admin/token
dataDir: /var/lib/fleetmq
log:
  level: info
  format: json
`
	out, err := p.rewriteConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(root, "out.yaml")
	if err := os.WriteFile(f, out, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f)
	if err != nil {
		t.Fatalf("rewritten config does not load: %v\n%s", err, out)
	}
	want := map[string]string{
		"listeners.mqtt":          "127.0.0.9:1883",
		"listeners.admin":         "127.0.0.9:8081",
		"listeners.adminTLS.cert": filepath.Join(root, "etc/fleetmq/tls/tls.crt"),
		"listeners.adminTLS.key":  filepath.Join(root, "etc/fleetmq/tls/tls.key"),
		"authFile":                filepath.Join(root, "etc/fleetmq/auth/bundle.json"),
		"adminTokenFile":          filepath.Join(root, "etc/fleetmq/admin/token"),
		"dataDir":                 filepath.Join(root, "var/lib/fleetmq"),
		"log.format":              "json",
	}
	got := map[string]string{
		"listeners.mqtt": cfg.Listeners.MQTT, "listeners.admin": cfg.Listeners.Admin,
		"listeners.adminTLS.cert": cfg.Listeners.AdminTLS.CertFile, "listeners.adminTLS.key": cfg.Listeners.AdminTLS.KeyFile,
		"authFile": cfg.AuthFile, "adminTokenFile": cfg.AdminTokenFile, "dataDir": cfg.DataDir, "log.format": cfg.Log.Format,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
}

func TestWriteVolume(t *testing.T) {
	dir := t.TempDir()
	read := func(name string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if changed, err := writeVolume(dir, map[string][]byte{"a": []byte("1"), "b": []byte("2")}, 0o644); err != nil || !changed {
		t.Fatalf("first write: changed %v, err %v", changed, err)
	}
	first, _ := os.Readlink(filepath.Join(dir, "..data"))
	if link, _ := os.Readlink(filepath.Join(dir, "a")); link != filepath.Join("..data", "a") {
		t.Errorf("a -> %q, want ..data/a", link)
	}
	if changed, err := writeVolume(dir, map[string][]byte{"a": []byte("1"), "b": []byte("2")}, 0o644); err != nil || changed {
		t.Fatalf("same content: changed %v, err %v", changed, err)
	}
	if changed, err := writeVolume(dir, map[string][]byte{"a": []byte("3")}, 0o644); err != nil || !changed {
		t.Fatalf("update: changed %v, err %v", changed, err)
	}
	second, _ := os.Readlink(filepath.Join(dir, "..data"))
	if second == first || !strings.HasPrefix(second, "..") {
		t.Errorf("..data -> %q after the update, was %q", second, first)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Errorf("old payload %s not removed (%v)", first, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Errorf("b still visible after it left the volume (%v)", err)
	}
	if got := read("a"); got != "3" {
		t.Errorf("a = %q, want 3", got)
	}
}
