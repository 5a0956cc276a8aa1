package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"allot/cluster"
	"allot/cmd/allot/server"
)

// The deployment files (Dockerfile, deploy/compose.yaml, deploy/k8s) are
// wiring between the binary and an orchestrator that no compiler checks.
// These tests parse them and check that wiring against the binary itself:
// every flag and ALLOT_* variable is one `allot serve` has and takes the
// value given, ports match the addresses, probes hit routes a node serves,
// the data volume is mounted at the data dir, selectors select the pods,
// and the peer names in --join are the names the headless Service gives.

// serveSettings parses a node's command line and environment the way
// `allot serve` does, and checks them as serve does before it starts.
func serveSettings(t *testing.T, where string, args []string, env map[string]string) *serveOpts {
	t.Helper()
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("%s: the command is %q, want `serve ...`", where, args)
	}
	fs, o := newServeFlags(io.Discard)
	for k := range env {
		if !strings.HasPrefix(k, "ALLOT_") {
			continue
		}
		if k == "ALLOT_AUTH_SECRET" {
			continue // the secret itself, not a flag
		}
		if f := fs.Lookup(strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(k, "ALLOT_")), "_", "-")); f == nil || envName(f.Name) != k {
			t.Errorf("%s: %s is the variable of no serve flag", where, k)
		}
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := parseSettings(fs, args[1:], lookup, nil); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if err := o.check(); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	join, err := parseJoin(o.join)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if err := o.checkFounding(join); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	// The Raft side as the node would start it (server.Start advertises
	// --advertise-host with the bound ports).
	cc := cluster.DefaultConfig()
	cc.NodeID, cc.DataDir, cc.RaftAddr, cc.Secret = o.nodeID, o.dataDir, o.raftAddr, []byte(strings.Repeat("s", 32))
	cc.HTTPAddr = "http://" + o.httpAddr
	if o.advertise != "" {
		_, raftPort, _ := net.SplitHostPort(o.raftAddr)
		_, httpPort, _ := net.SplitHostPort(o.httpAddr)
		cc.RaftAdvertise = net.JoinHostPort(o.advertise, raftPort)
		cc.HTTPAddr = "http://" + net.JoinHostPort(o.advertise, httpPort)
	}
	if err := cc.Validate(); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	return o
}

// port is the port of a host:port address.
func port(t *testing.T, where, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, perr := strconv.Atoi(p)
	if err != nil || perr != nil {
		t.Fatalf("%s: address %q has no port", where, addr)
	}
	return n
}

// readYAML decodes every document of a YAML file.
func readYAML(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// at walks a decoded YAML value along keys (map keys, or list indexes as
// ints); nil when the path does not exist.
func at(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

func list(v any) []any { l, _ := v.([]any); return l }

func strs(v any) []string {
	var out []string
	for _, e := range list(v) {
		out = append(out, str(e))
	}
	return out
}

// nodeRoutes starts a node in-process and reports, for a path, whether it
// is a route the node serves (any answer but 404).
func nodeRoutes(t *testing.T) func(path string) bool {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.DataDir, cfg.HTTPAddr, cfg.RaftAddr = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	cfg.AuthSecret = []byte(strings.Repeat("d", 32))
	srv, err := server.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	client := &http.Client{Timeout: 5 * time.Second}
	return func(path string) bool {
		resp, err := client.Get("http://" + srv.HTTPAddr() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode != http.StatusNotFound
	}
}

// TestDockerfileWiring: the image sets only real settings, exposes the
// ports it serves on, runs as a non-root user from a static binary, and
// checks its health with a command the binary has.
func TestDockerfileWiring(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "\\\n", " ")
	var final []string // the instructions of the last stage
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			final = nil
		}
		final = append(final, line)
	}
	if !strings.Contains(text, "CGO_ENABLED=0") {
		t.Error("the binary is not built with CGO_ENABLED=0")
	}
	env := map[string]string{}
	var exposed []int
	var user, health, entry string
	for _, line := range final {
		word, rest, _ := strings.Cut(line, " ")
		switch word {
		case "FROM":
			if strings.Contains(rest, "golang") {
				t.Errorf("the final stage is a Go toolchain image: %s", rest)
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				n, _ := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				exposed = append(exposed, n)
			}
		case "USER":
			user = rest
		case "HEALTHCHECK":
			health = rest
		case "ENTRYPOINT":
			entry = rest
		}
	}
	o := serveSettings(t, "Dockerfile", []string{"serve"}, env)
	if !slices.Contains(exposed, port(t, "Dockerfile", o.httpAddr)) {
		t.Errorf("EXPOSE %v lacks the HTTP port of %s", exposed, o.httpAddr)
	}
	if !slices.Contains(exposed, port(t, "Dockerfile", o.raftAddr)) {
		t.Errorf("EXPOSE %v lacks the Raft port of %s", exposed, o.raftAddr)
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("USER %q: the image must not run as root", user)
	}
	if !strings.Contains(text, "VOLUME [\""+o.dataDir+"\"]") {
		t.Errorf("no VOLUME at the data dir %s", o.dataDir)
	}
	var cmd []string
	if _, after, ok := strings.Cut(health, "CMD "); !ok || yaml.Unmarshal([]byte(after), &cmd) != nil || len(cmd) < 2 {
		t.Fatalf("HEALTHCHECK %q: want CMD [\"/path/allot\", \"health\", ...]", health)
	}
	var entrypoint []string
	if err := yaml.Unmarshal([]byte(entry), &entrypoint); err != nil || len(entrypoint) != 1 || entrypoint[0] != cmd[0] {
		t.Errorf("HEALTHCHECK runs %s, ENTRYPOINT is %s", cmd[0], entry)
	}
	if !strings.Contains(text, "COPY --from=build /out/allot "+cmd[0]) {
		t.Errorf("the binary is not copied to %s", cmd[0])
	}
	if cmd[1] != "health" {
		t.Errorf("HEALTHCHECK runs `%s`, want `allot health`", strings.Join(cmd, " "))
	}
	// The health command finds the node through the image's environment.
	if !flagNamesOfHealth()["http-addr"] {
		t.Error("allot health has no --http-addr to read ALLOT_HTTP_ADDR into")
	}
}

// flagNamesOfHealth is the set of `allot health`'s flags.
func flagNamesOfHealth() map[string]bool {
	var buf strings.Builder
	_ = run([]string{"health", "-h"}, io.Discard, &buf)
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z-]+)`).FindAllStringSubmatch(buf.String(), -1) {
		names[m[1]] = true
	}
	return names
}

// TestComposeWiring: every node of deploy/compose.yaml is an `allot serve`
// with real settings, founds the cluster with the others by their service
// names, advertises its own, publishes its HTTP port, keeps its data in a
// volume at the data dir, and reads the secret compose mounts.
func TestComposeWiring(t *testing.T) {
	docs := readYAML(t, filepath.Join(repoRoot, "deploy", "compose.yaml"))
	if len(docs) != 1 {
		t.Fatalf("compose.yaml has %d documents", len(docs))
	}
	services, _ := at(docs[0], "services").(map[string]any)
	if len(services) == 0 {
		t.Fatal("no services")
	}
	volumes, _ := at(docs[0], "volumes").(map[string]any)
	routes := nodeRoutes(t)
	for name, svc := range services {
		where := "compose service " + name
		env := map[string]string{}
		for k, v := range at(svc, "environment").(map[string]any) {
			env[k] = str(v)
		}
		o := serveSettings(t, where, strs(at(svc, "command")), env)
		if o.nodeID != name || o.advertise != name || str(at(svc, "hostname")) != name {
			t.Errorf("%s: node id %q, advertise host %q, hostname %q: want all %q", where, o.nodeID, o.advertise, at(svc, "hostname"), name)
		}
		if o.expect != len(services) {
			t.Errorf("%s: --bootstrap-expect %d for %d services", where, o.expect, len(services))
		}
		join, _ := parseJoin(o.join)
		var hosts []string
		for _, u := range join {
			pu, _ := url.Parse(u)
			hosts = append(hosts, pu.Hostname())
			if _, ok := services[pu.Hostname()]; !ok || pu.Port() != strconv.Itoa(port(t, where, o.httpAddr)) {
				t.Errorf("%s: --join %s is not a service's HTTP port", where, u)
			}
		}
		if slices.Sort(hosts); len(slices.Compact(hosts)) != len(services) {
			t.Errorf("%s: --join names %v, not every service once", where, hosts)
		}
		published := false
		for _, p := range strs(at(svc, "ports")) {
			parts := strings.Split(p, ":")
			published = published || parts[len(parts)-1] == strconv.Itoa(port(t, where, o.httpAddr))
		}
		if !published {
			t.Errorf("%s: ports %v do not publish the HTTP port of %s", where, at(svc, "ports"), o.httpAddr)
		}
		mounted := false
		for _, v := range strs(at(svc, "volumes")) {
			parts := strings.Split(v, ":")
			_, named := volumes[parts[0]]
			mounted = mounted || (len(parts) >= 2 && parts[1] == o.dataDir && named)
		}
		if !mounted {
			t.Errorf("%s: no named volume at the data dir %s", where, o.dataDir)
		}
		secret, ok := strings.CutPrefix(o.secretFile, "/run/secrets/")
		if !ok || !slices.Contains(strs(at(svc, "secrets")), secret) || at(docs[0], "secrets", secret) == nil {
			t.Errorf("%s: --auth-secret-file %q is not a secret compose mounts", where, o.secretFile)
		}
	}
	if !routes("/healthz") {
		t.Error("the image's health check route /healthz is not served")
	}
}

// k8sObjects reads every manifest under deploy/k8s, by kind and name.
func k8sObjects(t *testing.T) map[string]map[string]any {
	t.Helper()
	objs := map[string]map[string]any{}
	paths, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "k8s", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, p := range paths {
		for _, doc := range readYAML(t, p) {
			kind, name := str(doc["kind"]), str(at(doc, "metadata", "name"))
			if kind == "Kustomization" {
				for _, r := range strs(doc["resources"]) {
					if _, err := os.Stat(filepath.Join(filepath.Dir(p), r)); err != nil {
						t.Errorf("%s lists %s: %v", p, r, err)
					}
				}
				continue
			}
			objs[kind+"/"+name] = doc
		}
	}
	return objs
}

// selects reports whether a label selector (matchLabels or a Service's
// selector map) selects pods labelled labels.
func selects(selector, labels any) bool {
	sel, _ := selector.(map[string]any)
	if m, ok := sel["matchLabels"].(map[string]any); ok {
		sel = m
	}
	lab, _ := labels.(map[string]any)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if str(lab[k]) != str(v) {
			return false
		}
	}
	return true
}

// expandK8s expands $(VAR) as the kubelet does in args, with the values
// of the container's env (fieldRefs given sample values).
func expandK8s(s string, vars map[string]string) string {
	return regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := vars[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// TestKubernetesWiring checks the StatefulSet, its Services and its
// PodDisruptionBudget against each other and against `allot serve`.
func TestKubernetesWiring(t *testing.T) {
	objs := k8sObjects(t)
	sts := objs["StatefulSet/allot"]
	if sts == nil {
		t.Fatalf("no StatefulSet allot among %d objects", len(objs))
	}
	replicas, _ := strconv.Atoi(str(at(sts, "spec", "replicas")))
	serviceName := str(at(sts, "spec", "serviceName"))
	podLabels := at(sts, "spec", "template", "metadata", "labels")
	if !selects(at(sts, "spec", "selector"), podLabels) {
		t.Error("the StatefulSet's selector does not select its pods")
	}
	if str(at(sts, "spec", "podManagementPolicy")) != "Parallel" {
		t.Error("podManagementPolicy must be Parallel: no pod is ready before all have founded the cluster")
	}
	podSpec := at(sts, "spec", "template", "spec")
	c := at(podSpec, "containers", 0)

	// Settings: env (fieldRefs get a pod's values), then args.
	const namespace = "shop"
	for i := range replicas {
		pod := fmt.Sprintf("%s-%d", str(at(sts, "metadata", "name")), i)
		vars := map[string]string{}
		for _, e := range list(at(c, "env")) {
			name, ref := str(at(e, "name")), str(at(e, "valueFrom", "fieldRef", "fieldPath"))
			switch {
			case ref == "metadata.name":
				vars[name] = pod
			case ref == "metadata.namespace":
				vars[name] = namespace
			case ref != "":
				t.Errorf("env %s: fieldRef %s", name, ref)
			default:
				vars[name] = str(at(e, "value"))
			}
		}
		var args []string
		for _, a := range strs(at(c, "args")) {
			args = append(args, expandK8s(a, vars))
		}
		where := "pod " + pod
		o := serveSettings(t, where, args, vars)
		peer := func(p string) string { return p + "." + serviceName + "." + namespace + ".svc.cluster.local" }
		if o.nodeID != pod || o.advertise != peer(pod) {
			t.Errorf("%s: node id %q, advertise host %q; want %q and %q", where, o.nodeID, o.advertise, pod, peer(pod))
		}
		if o.expect != replicas {
			t.Errorf("%s: --bootstrap-expect %d for %d replicas", where, o.expect, replicas)
		}
		join, _ := parseJoin(o.join)
		var want []string
		for j := range replicas {
			want = append(want, fmt.Sprintf("http://%s:%d", peer(fmt.Sprintf("%s-%d", str(at(sts, "metadata", "name")), j)), port(t, where, o.httpAddr)))
		}
		if !slices.Equal(join, want) {
			t.Errorf("%s: --join %v, want the pods' names under the headless Service: %v", where, join, want)
		}
		if i > 0 {
			continue
		}
		checkPodWiring(t, o, sts, c, podSpec)
	}

	// Services.
	headless := objs["Service/"+serviceName]
	if headless == nil {
		t.Fatalf("no Service %q (the StatefulSet's serviceName)", serviceName)
	}
	if str(at(headless, "spec", "clusterIP")) != "None" || str(at(headless, "spec", "publishNotReadyAddresses")) != "true" {
		t.Errorf("Service %s must be headless and publish pods that are not ready (peers find each other before any is ready)", serviceName)
	}
	clients := 0
	for key, obj := range objs {
		if !strings.HasPrefix(key, "Service/") {
			continue
		}
		if !selects(at(obj, "spec", "selector"), podLabels) {
			t.Errorf("%s does not select the allot pods", key)
		}
		if key != "Service/"+serviceName {
			clients++
			if str(at(obj, "spec", "clusterIP")) == "None" || str(at(obj, "spec", "publishNotReadyAddresses")) == "true" {
				t.Errorf("%s: a client Service must route to ready pods only", key)
			}
		}
		for _, p := range list(at(obj, "spec", "ports")) {
			if containerPort(c, at(p, "targetPort")) == 0 {
				t.Errorf("%s: targetPort %v is no container port", key, at(p, "targetPort"))
			}
		}
	}
	if clients == 0 {
		t.Error("no client Service")
	}

	// The disruption budget.
	var pdb map[string]any
	for key, obj := range objs {
		if strings.HasPrefix(key, "PodDisruptionBudget/") {
			pdb = obj
		}
	}
	if pdb == nil || str(at(pdb, "spec", "maxUnavailable")) != "1" || !selects(at(pdb, "spec", "selector"), podLabels) {
		t.Errorf("want a PodDisruptionBudget with maxUnavailable 1 over the allot pods, got %v", pdb)
	}
}

// containerPort resolves a port given by name or number to a port of
// container c, 0 if it has none such.
func containerPort(c, ref any) int {
	for _, p := range list(at(c, "ports")) {
		n, _ := strconv.Atoi(str(at(p, "containerPort")))
		if str(ref) == str(at(p, "name")) || str(ref) == strconv.Itoa(n) {
			return n
		}
	}
	return 0
}

// checkPodWiring checks the pod template against one pod's settings o:
// ports, probes, the data volume and the secret.
func checkPodWiring(t *testing.T, o *serveOpts, sts map[string]any, c, podSpec any) {
	t.Helper()
	if got, want := containerPort(c, "http"), port(t, "http-addr", o.httpAddr); got != want {
		t.Errorf("container port http %d, --http-addr %s", got, o.httpAddr)
	}
	if got, want := containerPort(c, "raft"), port(t, "raft-addr", o.raftAddr); got != want {
		t.Errorf("container port raft %d, --raft-addr %s", got, o.raftAddr)
	}
	routes := nodeRoutes(t)
	for probe, want := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		path := str(at(c, probe, "httpGet", "path"))
		if path != want {
			t.Errorf("%s on %q, want %s", probe, path, want)
		}
		if !routes(path) {
			t.Errorf("%s: %s is not a route of a node", probe, path)
		}
		if containerPort(c, at(c, probe, "httpGet", "port")) != port(t, "http-addr", o.httpAddr) {
			t.Errorf("%s on port %v, not the HTTP port", probe, at(c, probe, "httpGet", "port"))
		}
	}
	mounts := map[string]string{} // volume name -> mount path
	for _, m := range list(at(c, "volumeMounts")) {
		mounts[str(at(m, "name"))] = str(at(m, "mountPath"))
	}
	claim := str(at(sts, "spec", "volumeClaimTemplates", 0, "metadata", "name"))
	if claim == "" || mounts[claim] != o.dataDir {
		t.Errorf("the volume claim %q is mounted at %q, the data dir is %q", claim, mounts[claim], o.dataDir)
	}
	secretOK := false
	for _, v := range list(at(podSpec, "volumes")) {
		if at(v, "secret", "secretName") != nil {
			dir := mounts[str(at(v, "name"))]
			secretOK = secretOK || (dir != "" && filepath.Dir(o.secretFile) == dir)
		}
	}
	if !secretOK {
		t.Errorf("--auth-secret-file %q is not in a mounted Secret", o.secretFile)
	}
}
