// Package argocd_test runs the Argo CD health check of Broker, User and ACL
// (health.lua) with gopher-lua — the Lua interpreter Argo CD itself embeds —
// on the sample objects of health_test.yaml, the way Argo CD calls it: the
// object as the global `obj`, the returned table's status and message.
//
// It also keeps argocd-cm.yaml (what users merge into Argo CD's argocd-cm)
// in sync with health.lua: `go test ./deploy/argocd -update` rewrites it.
package argocd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite argocd-cm.yaml from health.lua")

const (
	group  = "mqtt.fleetmq.io"
	cmFile = "argocd-cm.yaml"
)

var kinds = []string{"Broker", "User", "ACL"}

// Reasons of api/v1alpha1 by what the health check must make of them when
// Ready is False. A new reason constant fails TestEveryReasonIsClassified
// until it is added here (and, for a failure, to health.lua).
var (
	failureReasons   = []string{"ReconcileFailed", "BrokerNotFound", "SecretNotFound", "UsernameConflict", "Invalid", "TLSSecretNotFound", "AdminCertificateUntrusted", "ProgressDeadlineExceeded", "CredentialsSecretConflict"}
	transientReasons = []string{"Pending", "PodsNotReady", "NoReadyPods", "PodsNotStarting", "PushFailed"}
	// only with status True; Paused is the reason of the True Paused
	// condition (the script reads the annotation: Suspended)
	successReasons = []string{"Reconciled", "PodsReady", "Synced", "CredentialsSecretReady", "Paused"}
)

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type testCase struct {
	HealthStatus healthStatus `json:"healthStatus"`
	InputPath    string       `json:"inputPath"`
}

func readScript(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("health.lua")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func cmKey(kind string) string { return "resource.customizations.health." + group + "_" + kind }

// configMap renders argocd-cm.yaml: the script under the key Argo CD reads
// for each kind.
func configMap(script string) []byte {
	var b bytes.Buffer
	b.WriteString(`# Argo CD health checks of fleetmq's Broker, User and ACL: merge this data
# into the argocd-cm ConfigMap of your Argo CD installation (see
# docs/gitops-argocd.md), e.g.
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file deploy/argocd/argocd-cm.yaml
# Generated from health.lua by ` + "`go test ./deploy/argocd -update`" + `; do not edit.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
`)
	for _, kind := range kinds {
		fmt.Fprintf(&b, "  %s: |\n", cmKey(kind))
		for _, line := range strings.Split(strings.TrimRight(script, "\n"), "\n") {
			if line == "" {
				b.WriteString("\n")
			} else {
				b.WriteString("    " + line + "\n")
			}
		}
	}
	return b.Bytes()
}

// scripts returns the scripts to test for a kind: health.lua itself and the
// one argocd-cm.yaml carries for the kind.
func scripts(t *testing.T, kind string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(cmFile)
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		t.Fatalf("%s: %v", cmFile, err)
	}
	s, ok := cm.Data[cmKey(kind)]
	if !ok {
		t.Fatalf("%s has no key %s", cmFile, cmKey(kind))
	}
	return map[string]string{"health.lua": readScript(t), cmFile + ":" + kind: s}
}

func TestConfigMapInSync(t *testing.T) {
	want := configMap(readScript(t))
	if *update {
		if err := os.WriteFile(cmFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(cmFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./deploy/argocd -update", cmFile)
	}
	// What Argo CD reads back is exactly health.lua.
	for _, kind := range kinds {
		for name, s := range scripts(t, kind) {
			if s != readScript(t) {
				t.Errorf("%s differs from health.lua", name)
			}
		}
	}
}

// health runs a script the way Argo CD does and returns its verdict.
func health(t *testing.T, script string, object map[string]any) healthStatus {
	t.Helper()
	// Argo CD opens a restricted set of libraries (no io, no os but time).
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, object))
	if err := L.DoString(script); err != nil {
		t.Fatalf("lua: %v", err)
	}
	ret, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("the script returned %s, want a table", L.Get(-1).Type())
	}
	var hs healthStatus
	ret.ForEach(func(k, v lua.LValue) {
		switch k.String() {
		case "status":
			hs.Status = v.String()
		case "message":
			hs.Message = v.String()
		default:
			t.Errorf("unexpected key %q in the returned table", k.String())
		}
	})
	switch hs.Status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		t.Errorf("status %q is not an Argo CD health status", hs.Status)
	}
	return hs
}

// toLua converts a JSON value as Argo CD does: objects and arrays to
// tables (arrays 1-based), numbers to Lua numbers.
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case json.Number:
		f, _ := v.Float64()
		return lua.LNumber(f)
	case []any:
		tb := L.NewTable()
		for _, e := range v {
			tb.Append(toLua(L, e))
		}
		return tb
	case map[string]any:
		tb := L.NewTable()
		for k, e := range v {
			tb.RawSetString(k, toLua(L, e))
		}
		return tb
	default:
		panic(fmt.Sprintf("unexpected JSON value %T", v))
	}
}

func readObject(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return obj
}

func readCases(t *testing.T) []testCase {
	t.Helper()
	data, err := os.ReadFile("health_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests []testCase `json:"tests"`
	}
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		t.Fatalf("health_test.yaml: %v", err)
	}
	if len(doc.Tests) == 0 {
		t.Fatal("health_test.yaml has no tests")
	}
	return doc.Tests
}

func TestHealthChecks(t *testing.T) {
	for _, tc := range readCases(t) {
		t.Run(tc.InputPath, func(t *testing.T) {
			obj := readObject(t, tc.InputPath)
			kind, _ := obj["kind"].(string)
			if api, _ := obj["apiVersion"].(string); api != group+"/v1alpha1" {
				t.Fatalf("apiVersion %q, want %s/v1alpha1", api, group)
			}
			for name, script := range scripts(t, kind) {
				if got := health(t, script, obj); got != tc.HealthStatus {
					t.Errorf("%s: got %+v, want %+v", name, got, tc.HealthStatus)
				}
			}
		})
	}
}

// Every sample is used, and each kind has a Healthy, a Progressing and a
// Degraded case; every failure reason is shown Degraded and every transient
// one Progressing by some sample.
func TestCasesCoverEveryBranch(t *testing.T) {
	cases := readCases(t)
	listed := map[string]bool{}
	statuses := map[string]map[string]bool{}
	reasons := map[string]map[string]bool{} // reason of a False condition -> health of samples with it
	for _, tc := range cases {
		listed[filepath.ToSlash(tc.InputPath)] = true
		obj := readObject(t, tc.InputPath)
		kind, _ := obj["kind"].(string)
		if statuses[kind] == nil {
			statuses[kind] = map[string]bool{}
		}
		statuses[kind][tc.HealthStatus.Status] = true
		for _, r := range falseReasons(obj) {
			if reasons[r] == nil {
				reasons[r] = map[string]bool{}
			}
			reasons[r][tc.HealthStatus.Status] = true
		}
	}
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !listed[filepath.ToSlash(f)] {
			t.Errorf("%s is not used by health_test.yaml", f)
		}
	}
	for _, kind := range kinds {
		for _, st := range []string{"Healthy", "Progressing", "Degraded"} {
			if !statuses[kind][st] {
				t.Errorf("no %s sample of kind %s", st, kind)
			}
		}
	}
	for _, r := range failureReasons {
		if !reasons[r]["Degraded"] {
			t.Errorf("no Degraded sample with a False condition for reason %s", r)
		}
	}
	for _, r := range transientReasons {
		if !reasons[r]["Progressing"] {
			t.Errorf("no Progressing sample with a False condition for reason %s", r)
		}
	}
}

// falseReasons are the reasons of the object's False conditions.
func falseReasons(obj map[string]any) []string {
	status, _ := obj["status"].(map[string]any)
	conds, _ := status["conditions"].([]any)
	var rs []string
	for _, c := range conds {
		c, _ := c.(map[string]any)
		if r, _ := c["reason"].(string); c["status"] == "False" && r != "" {
			rs = append(rs, r)
		}
	}
	return rs
}

// Every Reason constant of api/v1alpha1 is classified, and the script treats
// each class as it should, on every kind.
func TestEveryReasonIsClassified(t *testing.T) {
	path := filepath.Join("..", "..", "api", "v1alpha1", "conditions.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	classified := map[string]string{}
	for _, r := range failureReasons {
		classified[r] = "Degraded"
	}
	for _, r := range transientReasons {
		classified[r] = "Progressing"
	}
	for _, r := range successReasons {
		classified[r] = "Healthy"
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range vs.Names {
			if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
				continue
			}
			lit, ok := vs.Values[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				continue
			}
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			found = append(found, v)
			if _, ok := classified[v]; !ok {
				t.Errorf("%s = %q in api/v1alpha1 is not classified: add it to failureReasons, transientReasons or successReasons here (and failures in health.lua)", name.Name, v)
			}
		}
		return true
	})
	if len(found) == 0 {
		t.Fatalf("no Reason constants found in %s", path)
	}
	sort.Strings(found)
	t.Logf("reasons in api/v1alpha1: %v", found)

	script := readScript(t)
	for _, kind := range kinds {
		for reason, want := range classified {
			if want == "Healthy" {
				continue
			}
			obj := map[string]any{
				"apiVersion": group + "/v1alpha1", "kind": kind,
				"metadata": map[string]any{"name": "x", "namespace": "t", "generation": float64(2)},
				"status": map[string]any{
					"observedGeneration": float64(2),
					"conditions": []any{map[string]any{
						"type": "Ready", "status": "False", "reason": reason, "message": "m", "observedGeneration": float64(2),
					}},
				},
			}
			got := health(t, script, obj)
			if got.Status != want || got.Message != reason+": m" {
				t.Errorf("%s Ready False %s: got %+v, want status %s, message %q", kind, reason, got, want, reason+": m")
			}
		}
	}
}
